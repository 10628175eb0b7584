"""The declarative libvirt XML model (libvirt_xml.model/domain/devices): both directions."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.libvirt_xml import parse, to_string
from pyv2v.libvirt_xml.domain import DiskXML, DomainXML, InterfaceXML

GOLDEN = Path(__file__).parent.parent / "golden"


def test_reading_never_changes_the_tree() -> None:
    dom = DomainXML(parse("<domain type='kvm'><name>x</name></domain>"))
    before = to_string(dom.node)
    assert dom.cpu.vendor is None and dom.cpu.sockets is None and not dom.cpu.exists()
    assert dom.os.type == "hvm" and not dom.os.is_uefi() and dom.features.names() == []
    assert dom.features.acpi is False and dom.devices.disks == [] and dom.clock.offset is None
    assert to_string(dom.node) == before


def test_writing_creates_in_order_and_none_removes() -> None:
    dom = DomainXML(type="kvm", name="g")
    dom.cpu.set(vendor="AMD", model="EPYC", model_fallback="allow")
    dom.cpu.set_topology(1, 2, 1)
    dom.os.set(firmware="efi", type="hvm", arch="x86_64")
    dom.features.create().set(acpi=True, pae=True)
    assert to_string(dom.node) == (
        '<domain type="kvm">\n  <name>g</name>\n  <cpu>\n    <vendor>AMD</vendor>\n'
        '    <model fallback="allow">EPYC</model>\n'
        '    <topology sockets="1" cores="2" threads="1"/>\n  </cpu>\n'
        '  <os firmware="efi">\n    <type arch="x86_64">hvm</type>\n  </os>\n'
        '  <features>\n    <acpi/>\n    <pae/>\n  </features>\n</domain>\n')
    dom.cpu.vendor = None
    dom.os.firmware = None
    dom.features.pae = False
    assert dom.cpu.vendor is None and dom.cpu.model == "EPYC" and dom.os.firmware is None
    assert dom.features.names() == ["acpi"]
    assert "<vendor" not in to_string(dom.node)


def test_devices_added_in_order_and_read_back() -> None:
    dom = DomainXML(type="kvm", name="g")
    devices = dom.devices.create()
    devices.add(DiskXML(type="network", source_protocol="nbd", host_transport="unix",
                        host_socket="/s", target_dev="sda", readonly=True))
    devices.add(InterfaceXML(type="bridge", mac="52:54:00:00:00:01", source_bridge="br0"))
    devices.add(DiskXML(type="file", source_file="/b", target_dev="sdb"))
    again = DomainXML(parse(to_string(dom.node)))
    disks = again.devices.disks
    assert [(d.target_dev, d.readonly) for d in disks] == [("sda", True), ("sdb", False)]
    assert (disks[0].host_socket, disks[0].host_port, disks[1].source_file) == ("/s", None, "/b")
    assert [(n.mac, n.source_bridge) for n in again.devices.interfaces] == [
        ("52:54:00:00:00:01", "br0")]


def test_unknown_property_is_an_error() -> None:
    with pytest.raises(AttributeError, match="no XML property 'sourcefile'"):
        DiskXML(sourcefile="/x")


@pytest.mark.parametrize("name", ["domain-bios-virtio-blk.xml", "domain-uefi-virtio-scsi.xml"])
def test_reads_the_domains_we_write(name: str) -> None:
    dom = DomainXML(parse((GOLDEN / "v2v" / name).read_text()))
    uefi = "uefi" in name
    assert dom.memory_bytes() == 2 * 1024**3 and dom.vcpu == 4
    assert (dom.cpu.sockets, dom.cpu.cores, dom.cpu.threads) == (1, 2, 2)
    assert dom.os.is_uefi() == uefi and dom.os.machine == ("q35" if uefi else "pc")
    assert dom.features.acpi and dom.features.apic and dom.on_crash == "restart"
    devs = dom.devices
    assert [d.driver_discard for d in devs.disks] == ["unmap", "unmap", None]
    assert [c.model for c in devs.controllers] == (["virtio-scsi"] if uefi else [])
    assert (devs.videos[0].model, devs.videos[0].vram, devs.graphics[0].port) == ("vga", 16384, -1)
    assert (devs.rngs[0].backend, devs.memballoons[0].model) == ("/dev/urandom", "virtio")
    assert [(s.target_type, s.target_port) for s in devs.serials + devs.consoles] == [
        (None, 0), ("serial", 0)]
