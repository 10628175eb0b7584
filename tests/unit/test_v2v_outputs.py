"""Output metadata: libvirt XML golden + libvirt schema, qemu script, JSON, staging, networks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from v2v_helpers import check_golden

from pyv2v.errors import V2VError
from pyv2v.v2v.network import NetworkMap
from pyv2v.v2v.outputs import OutputOptions, Staging, get
from pyv2v.v2v.outputs.base import drive_name
from pyv2v.v2v.outputs.domain_xml import build_domain
from pyv2v.v2v.types import (
    GuestCaps,
    Inspect,
    Source,
    SourceCpu,
    SourceDisk,
    SourceNic,
    SourceRemovable,
    TargetDisk,
    TargetMeta,
    TargetNicPlan,
)


def make_meta(firmware: str = "bios", bus: str = "virtio-blk") -> TargetMeta:
    src = Source(name="guest1", hypervisor="physical", memory=2 * 1024**3, vcpus=4,
                 disks=(SourceDisk(0, "/src/a.img", "raw", "sda", 3 * 1024**3),
                        SourceDisk(1, "/src/b.img", "raw", "sdb", 1024**3)),
                 nics=(SourceNic("52:54:00:01:02:03", "default", source_dev="eth0"),),
                 removables=(SourceRemovable("cdrom", "sr0"),),
                 cpu=SourceCpu("Intel", None, 1, 2, 2), firmware=firmware,
                 features=("acpi", "apic"), clock="utc")
    caps = GuestCaps(block_bus=bus, net_bus="virtio-net", video="vga",
                     machine="q35" if firmware == "uefi" else "pc", arch="x86_64",
                     firmware=firmware)
    insp = Inspect(root="/dev/sda2", type="linux", distro="debian", major=12, minor=0,
                   arch="x86_64", product_name="Debian GNU/Linux 12", package_format="deb",
                   package_management="apt")
    prefix = "vd" if bus == "virtio-blk" else "sd"
    disks = tuple(TargetDisk(f"/out/guest1-{drive_name(i)}", "raw", drive_name(i, prefix),
                             d.size or 0) for i, d in enumerate(src.disks))
    nics = (TargetNicPlan("52:54:00:01:02:03", "eth0", "default"),
            TargetNicPlan("52:54:00:aa:bb:cc", None, "br0", "bridge"))
    return TargetMeta("guest1", src, insp, caps, disks, nics)


def validate(tmp_path: Path, xml: str) -> None:
    p = tmp_path / "d.xml"
    p.write_text(xml)
    res = subprocess.run(["virt-xml-validate", str(p), "domain"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr + xml


@pytest.mark.parametrize("firmware,bus", [("bios", "virtio-blk"), ("uefi", "virtio-scsi")])
def test_domain_xml_golden_and_valid(tmp_path: Path, firmware: str, bus: str) -> None:
    xml = build_domain(make_meta(firmware, bus))
    validate(tmp_path, xml)
    check_golden(f"v2v/domain-{firmware}-{bus}.xml", xml)
    assert "/dev/sdb" not in xml


def test_drive_names() -> None:
    assert [drive_name(i) for i in (0, 1, 25, 26, 27)] == ["sda", "sdb", "sdz", "sdaa", "sdab"]
    assert drive_name(0, "vd") == "vda"


def test_staging_commit_and_abort(tmp_path: Path) -> None:
    s = Staging()
    final = tmp_path / "x.xml"
    s.write_text(str(final), "data")
    assert not final.exists() and len(os.listdir(tmp_path)) == 1
    s.commit()
    assert final.read_text() == "data"
    s2 = Staging()
    s2.write_text(str(tmp_path / "y.xml"), "partial")
    s2.abort()
    assert sorted(os.listdir(tmp_path)) == ["x.xml"]


def test_qemu_and_json_outputs(tmp_path: Path) -> None:
    meta = make_meta()
    for mode, suffix in (("qemu", ".sh"), ("json", ".json")):
        out = get(mode, OutputOptions(storage=str(tmp_path)))
        out.precheck()
        st = Staging()
        written = out.finalize(meta, st)
        st.commit()
        assert written == [str(tmp_path / f"guest1{suffix}")]
    script = (tmp_path / "guest1.sh").read_text()
    assert os.access(tmp_path / "guest1.sh", os.X_OK)
    assert "-accel" in script and "virtio-net-pci" in script and "mac=52:54:00:01:02:03" in script
    subprocess.run(["sh", "-n", str(tmp_path / "guest1.sh")], check=True)
    doc = json.loads((tmp_path / "guest1.json").read_text())
    assert doc["name"] == "guest1" and len(doc["disks"]) == 2 and doc["vcpu"] == 4


def test_bad_output_format(tmp_path: Path) -> None:
    out = get("local", OutputOptions(storage=str(tmp_path), format="vmdk"))
    with pytest.raises(V2VError, match="-of vmdk"):
        out.precheck()


def test_network_map_rules() -> None:
    m = NetworkMap()
    m.add("network", "ovirtmgmt")
    m.add("network", "lan:mynet")
    m.add_mac("52:54:00:00:00:09:bridge:br9")
    plan = m.plan((SourceNic("52:54:00:00:00:01", "lan"), SourceNic("52:54:00:00:00:02", "x"),
                   SourceNic("52:54:00:00:00:09", "y"), SourceNic(None, "z")))
    assert [(p.network, p.vnet_type) for p in plan] == [
        ("mynet", "network"), ("ovirtmgmt", "network"), ("br9", "bridge"),
        ("ovirtmgmt", "network")]
    assert plan[3].mac.startswith("52:54:00:") and len(plan[3].mac) == 17
    with pytest.raises(V2VError):
        m.add_mac("nonsense")
