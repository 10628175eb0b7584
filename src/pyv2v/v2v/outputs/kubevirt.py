"""`-o kubevirt -os DIR`: disk files NAME-sdX plus NAME.yaml, a KubeVirt `VirtualMachine`.

The manifest follows virt-v2v's (output/create_kubevirt_yaml.ml): labels libguestfs.org/…,
firmware bootloader bios/efi (persistent EFI variables), memory request in Mi, CPU topology,
an RNG when the guest has the driver, every disk on virtio as a `hostDisk` volume naming the
written file, one interface per target NIC with its MAC, and terminationGracePeriodSeconds 0.
Where the reference writes fields KubeVirt's API (kubevirt.io/v1) does not have, we write the
API's: `features` (acpi, apic only) under `domain` rather than under `resources`, CPU `threads`
(not `thread`), and networks as `pod: {}` for the first NIC (masquerade binding) and
`multus: {networkName: …}` for the others (bridge binding) instead of a bare `networkName`;
interface names are unique (net-0, net-1 …: the reference's net_NETWORK repeats for two NICs on
one network).  We also write the machine type the converter chose and `runStrategy: Halted`.
The guest name must be an RFC 1123 name, as KubeVirt requires (rename with -on).

YAML is written by the tiny emitter below (block style, every string double-quoted, non-ASCII and
control characters escaped), so the manifest needs no YAML library to write; the
tests parse it with PyYAML.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ... import __version__
from ...errors import V2VError
from ..types import Source, TargetMeta
from .base import FilesOutput, Target

RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
NIC_MODEL = {"virtio-net": "virtio", "e1000": "e1000", "rtl8139": "rtl8139"}


def emit(node: Any, indent: int = 0) -> list[str]:
    """Block-style YAML lines for dicts (insertion order), lists, str, int and bool."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines += emit(v, indent + (0 if isinstance(v, list) else 2))
            else:
                lines.append(f"{pad}{k}: {scalar(v)}")
    elif isinstance(node, list):
        for item in node:
            sub = emit(item, indent + 2) if isinstance(item, (dict, list)) and item else \
                [" " * (indent + 2) + scalar(item)]
            lines.append(f"{pad}- {sub[0][indent + 2:]}")
            lines += sub[1:]
    else:
        lines.append(pad + scalar(node))
    return lines


def scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return quote(v)
    if v == {} or v == []:
        return "{}" if isinstance(v, dict) else "[]"
    raise TypeError(f"cannot write {type(v).__name__} as YAML")


def quote(s: str) -> str:
    """A YAML double-quoted scalar: printable ASCII as is, everything else escaped (\\x, \\u,
    \\U), so no character can end the scalar, the line, or the document early."""
    out = []
    for ch in s:
        o = ord(ch)
        if 0x20 <= o < 0x7f and ch not in '"\\':
            out.append(ch)
        elif ch in '"\\':
            out.append("\\" + ch)
        else:
            out.append(f"\\x{o:02x}" if o <= 0xff else f"\\u{o:04x}" if o <= 0xffff
                       else f"\\U{o:08x}")
    return '"' + "".join(out) + '"'


def label(value: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends."""
    v = re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:63].strip("-_.")
    return v if LABEL_VALUE.match(v) else ""


def manifest(meta: TargetMeta, disk_paths: list[str]) -> dict[str, Any]:
    """The VirtualMachine as a dict in document order."""
    src, caps, insp = meta.source, meta.caps, meta.inspect
    labels = {"libguestfs.org/virt-v2v-version": label(f"pyv2v-{__version__}")}
    if insp is not None:
        labels["libguestfs.org/osinfo"] = label(f"{insp.distro}{insp.major}")
    if src.hypervisor not in ("", "unknown"):
        labels["libguestfs.org/source"] = label(src.hypervisor)
    bootloader = {"efi": {"persistent": True}} if caps.firmware == "uefi" else {"bios": {}}
    cpu: dict[str, Any] = {}
    if src.cpu.model:
        cpu["model"] = src.cpu.model
    c = src.cpu
    if c.sockets and c.cores and c.threads:
        cpu.update(sockets=c.sockets, cores=c.cores, threads=c.threads)
    else:
        cpu["cores"] = src.vcpus
    devices: dict[str, Any] = {}
    if caps.virtio_rng:
        devices["rng"] = {}
    bus = {"ide": "sata", "sata": "sata", "virtio-scsi": "scsi"}.get(caps.block_bus, "virtio")
    devices["disks"] = [{"disk": {"bus": bus}, "name": f"disk-{i}"}
                        for i in range(len(disk_paths))]
    if meta.tpm:
        devices["tpm"] = {}
    interfaces, networks = [], []
    for i, n in enumerate(meta.nics):
        name = f"net-{i}"
        iface: dict[str, Any] = {"name": name}
        iface["masquerade" if i == 0 else "bridge"] = {}
        iface["macAddress"] = n.mac
        iface["model"] = NIC_MODEL.get(caps.net_bus, "virtio")
        interfaces.append(iface)
        networks.append({"name": name, "pod": {}} if i == 0 else
                        {"name": name, "multus": {"networkName": n.network}})
    if interfaces:
        devices["interfaces"] = interfaces
    features: dict[str, Any] = {f: {} for f in ("acpi", "apic") if f in src.features or caps.acpi}
    if caps.hyperv:
        features["hyperv"] = {"relaxed": {}, "vapic": {}, "spinlocks": {"spinlocks": 8191}}
    domain: dict[str, Any] = {
        "firmware": {"bootloader": bootloader},
        "machine": {"type": caps.machine},
        "resources": {"requests": {"memory": f"{src.memory // 1024 // 1024}Mi"}},
        "features": features,
        "cpu": cpu,
        "devices": devices,
    }
    spec: dict[str, Any] = {"domain": domain,
                            "volumes": [{"hostDisk": {"path": p, "type": "Disk"},
                                         "name": f"disk-{i}"} for i, p in enumerate(disk_paths)]}
    if networks:
        spec["networks"] = networks
    spec["terminationGracePeriodSeconds"] = 0
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": meta.name, "labels": {k: v for k, v in labels.items() if v}},
            "spec": {"runStrategy": "Halted", "template": {"spec": spec}}}


def to_yaml(meta: TargetMeta, disk_paths: list[str]) -> str:
    head = ["---", f"# generated by pyv2v {__version__} (virt-v2v compatible -o kubevirt)"]
    return "\n".join(head + emit(manifest(meta, disk_paths))) + "\n"


class KubevirtOutput(FilesOutput):
    name = "kubevirt"
    description = "disk files and a KubeVirt VirtualMachine manifest (YAML)"

    def metadata_files(self, name: str) -> list[str]:
        return [f"{name}.yaml"]

    def setup(self, name: str, source: Source) -> Target:
        if not RFC1123.match(name) or len(name) > 63:
            raise V2VError(f"-o kubevirt: the guest name {name!r} must contain only lowercase "
                           "letters, digits, '-' or '.', and start and end with a letter or "
                           "digit (rename it with -on)")
        return super().setup(name, source)

    def finalize(self, meta: TargetMeta, target: Target) -> list[str]:
        assert target.files is not None
        final = os.path.join(target.dir, f"{meta.name}.yaml")
        target.files.write_text(final, to_yaml(meta, [d.path for d in meta.disks]))
        return [final]
