"""Output metadata: libvirt XML golden + libvirt schema, qemu script, JSON, networks.

Staging, destinations and the per-disk records are tested in test_v2v_staging.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from v2v_helpers import check_golden

from pyv2v.devnames import target_dev
from pyv2v.errors import V2VError
from pyv2v.v2v.network import NetworkMap
from pyv2v.v2v.outputs import OutputOptions, get
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
    disks = tuple(TargetDisk(f"/out/guest1-{target_dev('scsi', i)}", "raw", target_dev(bus, i),
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


def test_qemu_and_json_outputs(tmp_path: Path) -> None:
    meta = make_meta()
    for mode, suffix in (("qemu", ".sh"), ("json", ".json")):
        (tmp_path / mode).mkdir()
        out = get(mode, OutputOptions(storage=str(tmp_path / mode)))
        out.precheck()
        target = out.setup(meta.name, meta.source)
        written = out.finalize(meta, target)
        target.commit()
        assert written == [str(tmp_path / mode / f"guest1{suffix}")]
        assert sorted(os.listdir(tmp_path / mode)) == ["guest1-sda", "guest1-sdb",
                                                       f"guest1{suffix}"]
        assert {oct(os.stat(tmp_path / mode / f"guest1-sd{x}").st_mode & 0o777)
                for x in "ab"} == {"0o600"}
    script = tmp_path / "qemu" / "guest1.sh"
    assert os.access(script, os.X_OK) and os.stat(script).st_mode & 0o777 == 0o700
    text = script.read_text()
    assert "-accel" in text and "virtio-net-pci" in text and "mac=52:54:00:01:02:03" in text
    subprocess.run(["sh", "-n", str(script)], check=True)
    doc = json.loads((tmp_path / "json" / "guest1.json").read_text())
    assert doc["name"] == "guest1" and len(doc["disks"]) == 2 and doc["vcpu"] == 4
    assert os.stat(tmp_path / "json" / "guest1.json").st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", ["local", "qemu", "json"])
def test_two_disks_are_named_after_the_source_drive_letters(tmp_path: Path, mode: str) -> None:
    """NAME-sda, NAME-sdb (a -o json bug once named the second one NAME-sda-sdb)."""
    src = make_meta().source
    target = get(mode, OutputOptions(storage=str(tmp_path))).setup("guest1", src)
    try:
        assert [d.location for d in target.disks] == [str(tmp_path / "guest1-sda"),
                                                      str(tmp_path / "guest1-sdb")]
    finally:
        target.abort()
    assert os.listdir(tmp_path) == []


def test_json_disks_pattern(tmp_path: Path) -> None:
    src = make_meta().source
    out = get("json", OutputOptions(storage=str(tmp_path),
                                    options={"json-disks-pattern": "%{GuestName}-disk%{DiskNo}"}))
    target = out.setup("g", src)
    assert [os.path.basename(d.location) for d in target.disks] == ["g-disk1", "g-disk2"]
    target.abort()
    bad = get("json", OutputOptions(storage=str(tmp_path),
                                    options={"json-disks-pattern": "../%{GuestName}"}))
    with pytest.raises(V2VError, match="invalid disk file name"):
        bad.setup("g", src)
    same = get("json", OutputOptions(storage=str(tmp_path),
                                     options={"json-disks-pattern": "%{GuestName}"}))
    with pytest.raises(V2VError, match="same file name"):
        same.setup("g", src)
    assert os.listdir(tmp_path) == []


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
