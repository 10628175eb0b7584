"""Build the target libvirt domain XML from a `TargetMeta` (used by -o local, later -o libvirt)."""

from __future__ import annotations

from lxml import etree

from ...libvirt_xml import to_string
from ...libvirt_xml.domain import DomainXML
from ..types import TargetMeta

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BUS_XML = {"virtio-blk": "virtio", "virtio-scsi": "scsi", "ide": "ide", "sata": "sata"}
NET_MODEL = {"virtio-net": "virtio", "e1000": "e1000", "rtl8139": "rtl8139"}


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    e = etree.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        e.text = text
    return e


def build_domain(meta: TargetMeta) -> str:
    src, caps = meta.source, meta.caps
    dom = DomainXML(type="kvm", name=meta.name)
    kib = str(src.memory // 1024)
    dom.memory, dom.memory_unit = kib, "KiB"
    dom.current_memory, dom.current_memory_unit = kib, "KiB"
    dom.vcpu = src.vcpus
    c = src.cpu
    if c.sockets and c.cores and c.threads and c.sockets * c.cores * c.threads == src.vcpus:
        dom.cpu_sockets, dom.cpu_cores, dom.cpu_threads = c.sockets, c.cores, c.threads
    dom.os_type, dom.os_arch, dom.os_machine = "hvm", caps.arch, caps.machine
    if caps.firmware == "uefi":
        dom.loader, dom.loader_type, dom.loader_readonly = OVMF_CODE, "pflash", "yes"
        _el(dom.node.find("os"), "nvram", template=OVMF_VARS)
    feats = _el(dom.node, "features")
    for f in ("acpi", "apic"):
        if f in src.features or caps.acpi:
            _el(feats, f)
    _el(dom.node, "clock", offset=src.clock if src.clock in ("utc", "localtime") else "utc")
    for ev, act in (("on_poweroff", "destroy"), ("on_reboot", "restart"),
                    ("on_crash", "restart")):
        _el(dom.node, ev, act)

    bus = BUS_XML[caps.block_bus]
    devices = dom.devices()
    if caps.block_bus == "virtio-scsi":
        _el(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    for d in meta.disks:
        disk = dom.add_disk(type="file", device="disk", driver_name="qemu",
                            driver_type=d.format, source_file=d.path, target_dev=d.target_dev,
                            target_bus=bus)
        if caps.block_bus in ("virtio-blk", "virtio-scsi"):
            disk.node.find("driver").set("discard", "unmap")
    cd_bus, cd_prefix = ("sata", "sd") if caps.machine == "q35" else ("ide", "hd")
    from .base import drive_name  # local import: base imports types only
    used = len(meta.disks) if cd_prefix == "sd" and caps.block_bus == "virtio-scsi" else 0
    for i, r in enumerate(src.removables):
        dev = dom.add_disk(type="file", device=r.kind, driver_name="qemu", driver_type="raw",
                           target_dev=drive_name(used + i + (2 if cd_bus == "ide" else 0),
                                                 cd_prefix if r.kind == "cdrom" else "fd"),
                           target_bus=cd_bus if r.kind == "cdrom" else "fdc")
        _el(dev.node, "readonly")
    for n in meta.nics:
        iface = dom.add_interface(type=n.vnet_type, mac=n.mac)
        if n.vnet_type == "bridge":
            iface.source_bridge = n.network
        else:
            iface.source_network = n.network
        iface.model = NET_MODEL.get(caps.net_bus, "virtio")
    _el(_el(devices, "video"), "model", type=caps.video, vram="16384", heads="1")
    _el(devices, "graphics", type="vnc", autoport="yes", port="-1")
    _el(devices, "input", type="tablet", bus="usb")
    if caps.virtio_rng:
        _el(_el(devices, "rng", model="virtio"), "backend", "/dev/urandom", model="random")
    _el(devices, "memballoon", model="virtio" if caps.virtio_balloon else "none")
    _el(_el(devices, "serial", type="pty"), "target", port="0")
    _el(_el(devices, "console", type="pty"), "target", type="serial", port="0")
    return to_string(dom.node)
