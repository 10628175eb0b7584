"""physical.xml golden files (PROTOCOL.md §5).  PYV2V_UPDATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from pyv2v import __version__, devnames
from pyv2v.p2v import physical_xml
from pyv2v.p2v.config import Config

GOLDEN = Path(__file__).parent.parent / "golden" / "p2v"


def check_golden(name: str, data: bytes) -> None:
    data = data.replace(__version__.encode(), b"VERSION")
    path = GOLDEN / name
    if os.environ.get("PYV2V_UPDATE_GOLDEN"):
        path.write_bytes(data)
    assert data.decode() == path.read_text()


def protocol_example() -> Config:
    return Config(guestname="myhost", memory=16 << 30, cores=4, cpu_vendor="Intel",
                  rtc_basis="utc", acpi=True, apic=True, pae=True, disks=["sda"],
                  removable=["sr0"], interfaces=["eth0"])


def test_protocol_example() -> None:
    xml = physical_xml.build(protocol_example(), [43021], {"eth0": "52:54:00:12:34:56"},
                             arch="x86_64")
    check_golden("physical-protocol-example.xml", xml)


def test_images_phys_topo_network_map_clock() -> None:
    cfg = Config(guestname="p2v-abc", memory=1 << 30, cores=2, phys_topo=True,
                 cpu_vendor="AMD", cpu_model="EPYC", rtc_basis="utc", rtc_offset=3600,
                 acpi=True, disks=["/var/tmp/a.img", "/var/tmp/b.img"],
                 interfaces=["em1", "em2", "wlan0"],
                 network_map=["em1:ovirtmgmt", "em2:management", "other"])
    xml = physical_xml.build(cfg, [50001, 50002], {"em1": "52:54:00:00:00:01"}, (2, 4, 2),
                             arch="x86_64")
    check_golden("physical-images-phys-topo.xml", xml)
    dom = etree.fromstring(xml)
    assert dom.findtext("vcpu") == "16"
    assert [t.get("dev") for t in dom.iterfind("devices/disk/target")] == ["sda", "sdb"]


def test_localtime_and_no_features() -> None:
    cfg = Config(guestname="lt", memory=2 << 30, cores=1, rtc_basis="localtime", disks=["vda"])
    xml = physical_xml.build(cfg, [1], arch="x86_64")
    check_golden("physical-localtime.xml", xml)


def test_uefi_socket_endpoint() -> None:
    """Known firmware is `<os firmware=…>` (stock virt-v2v 2.2.0 reads it too); a Unix socket
    endpoint is `<host transport="unix" socket=…>` (only our v2v reads that: stock virt-v2v
    ignores such a disk, so the engine uses TCP ports)."""
    cfg = Config(guestname="efi", memory=4 << 30, cores=2, acpi=True, apic=True,
                 disks=["nvme0n1", "sda"], interfaces=["eno1"])
    xml = physical_xml.build(cfg, ["/run/pyv2v/nbd0.sock", 43022], {"eno1": "52:54:00:00:00:09"},
                             arch="x86_64", firmware="uefi")
    check_golden("physical-uefi-socket.xml", xml)
    bios = etree.fromstring(physical_xml.build(cfg, [1, 2], arch="x86_64", firmware="bios"))
    assert bios.find("os").get("firmware") == "bios"


def test_invariants() -> None:
    dom = etree.fromstring(physical_xml.build(protocol_example(), [43021], arch="x86_64"))
    assert dom.get("type") == "physical"
    hosts = dom.findall("devices/disk/source/host")
    assert [(h.get("name"), h.get("port")) for h in hosts] == [("localhost", "43021")]
    assert dom.find("memory").get("unit") == "KiB" and dom.findtext("memory") == "16777216"
    with pytest.raises(ValueError):
        physical_xml.build(protocol_example(), [], arch="x86_64")


@pytest.mark.parametrize("i,name", [(0, "a"), (25, "z"), (26, "aa"), (701, "zz"), (702, "aaa")])
def test_drive_names(i: int, name: str) -> None:
    assert devnames.drive_letters(i) == name


def test_network_map() -> None:
    m = ["em1:ovirtmgmt", "em2:management", "other"]
    assert physical_xml.map_network(m, "em1") == "ovirtmgmt"
    assert physical_xml.map_network(m, "em2") == "management"
    assert physical_xml.map_network(m, "em3") == "other"
    assert physical_xml.map_network([], "em3") == "default"


@pytest.mark.parametrize("name", ["physical-protocol-example.xml",
                                  "physical-images-phys-topo.xml", "physical-localtime.xml"])
def test_our_v2v_accepts_it(name: str) -> None:
    """The server side of this project parses what p2v writes (the stock one: interop test)."""
    from pyv2v.v2v.inputs import InputOptions, get

    src = get("libvirtxml").source(InputOptions(args=(str(GOLDEN / name),)))
    dom = etree.parse(str(GOLDEN / name)).getroot()
    assert src.name == dom.findtext("name")
    assert src.memory == int(dom.findtext("memory")) * 1024
    ports = [h.get("port") for h in dom.iterfind("devices/disk/source/host")]
    assert [d.location for d in src.disks] == [f"nbd://localhost:{p}" for p in ports]
