"""Target domain XML: removable drive names (devnames) and libvirt's schema for each machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pyv2v.libvirt_xml import parse
from pyv2v.libvirt_xml.domain import DomainXML
from pyv2v.v2v.outputs.domain_xml import build_domain
from pyv2v.v2v.types import GuestCaps, Source, SourceDisk, SourceRemovable, TargetDisk, TargetMeta


def meta(machine: str, bus: str, ndisks: int = 2) -> TargetMeta:
    removables = (SourceRemovable("cdrom", "sr0"), SourceRemovable("floppy", "fd0"),
                  SourceRemovable("cdrom", "sr1"))
    src = Source(name="g", hypervisor="kvm", memory=1 << 30, vcpus=1,
                 disks=tuple(SourceDisk(i, f"/src/{i}", "raw") for i in range(ndisks)),
                 removables=removables, features=("acpi",), clock="localtime")
    prefix = "vd" if bus == "virtio-blk" else "sd"
    caps = GuestCaps(block_bus=bus, net_bus="virtio-net", video="vga", machine=machine,
                     arch="x86_64", firmware="bios", virtio_rng=False, virtio_balloon=False)
    disks = tuple(TargetDisk(f"/out/g-{i}", "qcow2", prefix + "ab"[i], 1 << 30)
                  for i in range(ndisks))
    return TargetMeta("g", src, None, caps, disks, ())


@pytest.mark.parametrize("machine,bus,expect", [
    ("pc", "virtio-blk", [("hdc", "ide", "cdrom"), ("fda", "fdc", "floppy"),
                          ("hdd", "ide", "cdrom")]),
    ("q35", "virtio-blk", [("sda", "sata", "cdrom"), ("fda", "fdc", "floppy"),
                           ("sdb", "sata", "cdrom")]),
    ("q35", "virtio-scsi", [("sdc", "sata", "cdrom"), ("fda", "fdc", "floppy"),
                            ("sdd", "sata", "cdrom")]),
])
def test_removables_and_schema(tmp_path: Path, machine: str, bus: str,
                               expect: list[tuple[str, str, str]]) -> None:
    xml = build_domain(meta(machine, bus))
    dom = DomainXML(parse(xml))
    removable = [(d.target_dev, d.target_bus, d.device) for d in dom.devices.disks[2:]]
    assert removable == expect
    assert all(d.readonly for d in dom.devices.disks[2:])
    assert [d.driver_type for d in dom.devices.disks[:2]] == ["qcow2", "qcow2"]
    assert dom.clock.offset == "localtime" and dom.features.names() == ["acpi", "apic"]
    assert dom.devices.rngs == [] and dom.devices.memballoons[0].model == "none"
    p = tmp_path / "d.xml"
    p.write_text(xml)
    res = subprocess.run(["virt-xml-validate", str(p), "domain"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr + xml
