"""-o kubevirt: the VirtualMachine manifest (golden files), its YAML, and the name rule.

The manifests are built from the same `TargetMeta` a conversion hands the output; goldens live in
tests/golden/v2v/kubevirt/ (PYV2V_UPDATE_GOLDEN=1 rewrites them).  Every manifest must parse
with PyYAML into exactly the dict we built, and use only field names of KubeVirt's API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from v2v_helpers import check_golden

from pyv2v.errors import V2VError
from pyv2v.v2v.outputs import OutputOptions, get
from pyv2v.v2v.outputs.kubevirt import emit, manifest, to_yaml
from pyv2v.v2v.types import (
    GuestCaps,
    Inspect,
    Source,
    SourceCpu,
    SourceDisk,
    TargetDisk,
    TargetMeta,
    TargetNicPlan,
)

# KubeVirt API (kubevirt.io/v1) field names we may write, by parent path.  Checked against the
# API's types (kubevirt/client-python docs V1Features, V1FeatureHyperv, V1FeatureSpinlocks,
# V1Devices): Features.hyperv {relaxed, vapic, spinlocks{spinlocks = retries}}, Devices.tpm.
API_FIELDS: dict[str, set[str]] = {
    "": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "labels"},
    "spec": {"runStrategy", "template"},
    "spec.template": {"spec"},
    "spec.template.spec": {"domain", "volumes", "networks", "terminationGracePeriodSeconds"},
    "spec.template.spec.domain": {"firmware", "machine", "resources", "features", "cpu",
                                  "devices"},
    "spec.template.spec.domain.firmware": {"bootloader"},
    "spec.template.spec.domain.firmware.bootloader": {"bios", "efi"},
    "spec.template.spec.domain.firmware.bootloader.efi": {"persistent"},
    "spec.template.spec.domain.machine": {"type"},
    "spec.template.spec.domain.resources": {"requests"},
    "spec.template.spec.domain.resources.requests": {"memory"},
    "spec.template.spec.domain.features": {"acpi", "apic", "hyperv"},
    "spec.template.spec.domain.features.hyperv": {"relaxed", "vapic", "spinlocks"},
    "spec.template.spec.domain.features.hyperv.spinlocks": {"spinlocks"},
    "spec.template.spec.domain.cpu": {"model", "sockets", "cores", "threads"},
    "spec.template.spec.domain.devices": {"rng", "disks", "tpm", "interfaces"},
    "spec.template.spec.domain.devices.disks": {"disk", "name"},
    "spec.template.spec.domain.devices.disks.disk": {"bus"},
    "spec.template.spec.domain.devices.interfaces": {"name", "masquerade", "bridge",
                                                     "macAddress", "model"},
    "spec.template.spec.volumes": {"hostDisk", "name"},
    "spec.template.spec.volumes.hostDisk": {"path", "type"},
    "spec.template.spec.networks": {"name", "pod", "multus"},
    "spec.template.spec.networks.multus": {"networkName"},
}
FREE_KEYS = {"metadata.labels"}  # label keys are ours to choose


def check_api_fields(node: Any, path: str = "") -> None:
    if isinstance(node, list):
        for item in node:
            check_api_fields(item, path)
    elif isinstance(node, dict) and path not in FREE_KEYS:
        extra = set(node) - API_FIELDS.get(path, set())
        assert not extra, f"{path or '(top)'}: not KubeVirt API fields: {sorted(extra)}"
        for k, v in node.items():
            check_api_fields(v, f"{path}.{k}" if path else k)


def meta(firmware: str = "bios", ndisks: int = 1, nics: int = 1, name: str = "deb12",
         topology: bool = False) -> TargetMeta:
    cpu = SourceCpu(vendor="Intel", model="Skylake-Client", sockets=1, cores=2, threads=1) \
        if topology else SourceCpu()
    src = Source(name="src", hypervisor="physical", memory=2 << 30, vcpus=2,
                 disks=tuple(SourceDisk(i, f"/src/{i}", "raw") for i in range(ndisks)),
                 cpu=cpu, features=("acpi", "apic", "pae"), firmware=firmware)
    insp = Inspect(root="/dev/sda2", type="linux", distro="debian", major=12, minor=0,
                   arch="x86_64", product_name="Debian GNU/Linux 12", package_format="deb",
                   package_management="apt", firmware=firmware)
    caps = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga",
                     machine="q35" if firmware == "uefi" else "pc", arch="x86_64",
                     firmware=firmware, target_devs=tuple(f"vd{'ab'[i]}" for i in range(ndisks)))
    disks = tuple(TargetDisk(f"/out/{name}-sd{'ab'[i]}", "raw", f"vd{'ab'[i]}", 8 << 30)
                  for i in range(ndisks))
    plans = tuple(TargetNicPlan(f"52:54:00:5a:7e:0{i + 1}", f"eth{i}",
                                ("default", "storage-net")[i]) for i in range(nics))
    return TargetMeta(name, src, insp, caps, disks, plans)


CASES = {
    "bios-1disk-1nic": dict(firmware="bios"),
    "uefi-1disk-1nic": dict(firmware="uefi", topology=True),
    "bios-2disks-2nics": dict(firmware="bios", ndisks=2, nics=2),
    "uefi-2disks-2nics": dict(firmware="uefi", ndisks=2, nics=2, topology=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifest_golden(case: str) -> None:
    m = meta(**CASES[case])  # type: ignore[arg-type]
    text = to_yaml(m, [d.path for d in m.disks])
    check_golden(f"v2v/kubevirt/{case}.yaml", text)
    doc = yaml.safe_load(text)
    assert doc == manifest(m, [d.path for d in m.disks])
    check_api_fields(doc)


def test_manifest_content_follows_the_guest() -> None:
    m = meta(firmware="uefi", ndisks=2, nics=2, topology=True)
    doc = yaml.safe_load(to_yaml(m, [d.path for d in m.disks]))
    assert doc["apiVersion"] == "kubevirt.io/v1" and doc["kind"] == "VirtualMachine"
    assert doc["metadata"]["name"] == "deb12"
    assert doc["metadata"]["labels"]["libguestfs.org/osinfo"] == "debian12"
    spec = doc["spec"]["template"]["spec"]
    dom = spec["domain"]
    assert dom["firmware"]["bootloader"] == {"efi": {"persistent": True}}
    assert dom["machine"]["type"] == "q35"
    assert dom["resources"]["requests"]["memory"] == "2048Mi"
    assert dom["cpu"] == {"model": "Skylake-Client", "sockets": 1, "cores": 2, "threads": 1}
    assert [d["disk"]["bus"] for d in dom["devices"]["disks"]] == ["virtio", "virtio"]
    disk_names = [d["name"] for d in dom["devices"]["disks"]]
    assert disk_names == [v["name"] for v in spec["volumes"]]
    assert [v["hostDisk"]["path"] for v in spec["volumes"]] == ["/out/deb12-sda",
                                                               "/out/deb12-sdb"]
    ifaces = dom["devices"]["interfaces"]
    assert [i["macAddress"] for i in ifaces] == ["52:54:00:5a:7e:01", "52:54:00:5a:7e:02"]
    assert [i["name"] for i in ifaces] == [n["name"] for n in spec["networks"]]
    assert len({i["name"] for i in ifaces}) == 2
    assert spec["networks"][0] == {"name": ifaces[0]["name"], "pod": {}}
    assert spec["networks"][1]["multus"] == {"networkName": "storage-net"}
    assert "pae" not in dom["features"]


@given(st.recursive(st.text() | st.integers() | st.booleans(),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.from_regex(r"[a-zA-Z][a-zA-Z0-9_./-]{0,10}",
                                                    fullmatch=True), kids, max_size=3),
                    max_leaves=12))
def test_emitter_round_trips_through_yaml(node: Any) -> None:
    """Any strings (quotes, colons, newlines, 'yes', '123') come back unchanged."""
    doc = {"root": node}
    assert yaml.safe_load("\n".join(emit(doc)) + "\n") == doc


@pytest.mark.parametrize("name", ["Deb12", "deb_12", "-deb", "deb-", "a" * 64])
def test_name_must_be_rfc1123(tmp_path: Path, name: str) -> None:
    out = get("kubevirt", OutputOptions(storage=str(tmp_path)))
    out.precheck()
    src = Source(name=name, hypervisor="kvm", memory=1 << 30, vcpus=1,
                 disks=(SourceDisk(0, "/x", "raw"),))
    with pytest.raises(V2VError, match="rename it with -on"):
        out.setup(name, src)
    assert list(tmp_path.iterdir()) == []


def test_writes_disks_and_yaml_through_staging(tmp_path: Path) -> None:
    out = get("kubevirt", OutputOptions(storage=str(tmp_path)))
    out.precheck()
    m = meta()
    target = out.setup("deb12", m.source)
    assert [d.location for d in target.disks] == [str(tmp_path / "deb12-sda")]
    m = TargetMeta(m.name, m.source, m.inspect, m.caps,
                   (TargetDisk(str(tmp_path / "deb12-sda"), "raw", "vda", 1),), m.nics)
    assert not (tmp_path / "deb12.yaml").exists()
    out.finalize(m, target)
    target.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deb12-sda", "deb12.yaml"]
    doc = yaml.safe_load((tmp_path / "deb12.yaml").read_text())
    assert doc["spec"]["template"]["spec"]["volumes"][0]["hostDisk"]["path"] == \
        str(tmp_path / "deb12-sda")
    assert (tmp_path / "deb12.yaml").stat().st_mode & 0o777 == 0o600


def windows_meta() -> TargetMeta:
    """A Windows Server 2022 UEFI guest as the Windows converter hands it over: Hyper-V
    enlightenments, a TPM, SATA (no virtio-win), e1000."""
    src = Source(name="win2022", hypervisor="vmware", memory=4 << 30, vcpus=2,
                 disks=(SourceDisk(0, "/src/0", "raw"),), features=("acpi", "apic"),
                 firmware="uefi", tpm=True)
    insp = Inspect(root="/dev/sda3", type="windows", distro="windows", major=10, minor=0,
                   arch="x86_64", product_name="Windows Server 2022 Standard",
                   package_format="", package_management="", firmware="uefi")
    caps = GuestCaps(block_bus="sata", net_bus="e1000", video="qxl", machine="q35",
                     arch="x86_64", firmware="uefi", virtio_rng=False, target_devs=("sda",),
                     hyperv=True, clock="localtime", tpm=True)
    return TargetMeta("win2022", src, insp, caps,
                      (TargetDisk("/out/win2022-sda", "raw", "sda", 40 << 30),),
                      (TargetNicPlan("00:50:56:aa:bb:01", "Ethernet0", "default"),))


def test_windows_manifest_uses_only_api_fields() -> None:
    """tpm and the Hyper-V enlightenments are KubeVirt fields (Devices.tpm, Features.hyperv:
    relaxed, vapic, spinlocks.spinlocks), not ours."""
    m = windows_meta()
    doc = yaml.safe_load(to_yaml(m, [d.path for d in m.disks]))
    dom = doc["spec"]["template"]["spec"]["domain"]
    assert dom["features"]["hyperv"] == {"relaxed": {}, "vapic": {},
                                         "spinlocks": {"spinlocks": 8191}}
    assert dom["devices"]["tpm"] == {}
    assert dom["firmware"]["bootloader"] == {"efi": {"persistent": True}}
    check_api_fields(doc)
