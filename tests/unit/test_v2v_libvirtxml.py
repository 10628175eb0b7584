"""-i libvirtxml parsing (physical.xml per PROTOCOL.md §5), --print-source golden, bad XML."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from v2v_helpers import assert_one_line_error, check_golden, run_v2v

from pyv2v.errors import V2VError
from pyv2v.v2v.inputs import InputOptions, get

PHYSICAL = """<domain type="physical">
  <name>myhost</name>
  <memory unit="KiB">16777216</memory><currentMemory unit="KiB">16777216</currentMemory>
  <vcpu>4</vcpu>
  <cpu match="minimum"><vendor>Intel</vendor><topology sockets="1" cores="4" threads="1"/></cpu>
  <clock offset="utc"/>
  <os><type arch="x86_64">hvm</type></os>
  <features><acpi/><apic/><pae/></features>
  <devices>
    <disk type="network" device="disk"><driver name="qemu" type="raw"/>
      <source protocol="nbd"><host name="localhost" port="43021"/></source>
      <target dev="sda"/></disk>
    <disk type="file" device="disk"><driver name="qemu" type="raw"/>
      <source file="DISK2"/><target dev="sdb"/></disk>
    <disk type="network" device="cdrom"><driver name="qemu" type="raw"/><target dev="sr0"/></disk>
    <interface type="network"><source network="default"/><target dev="eth0"/>
      <mac address="52:54:00:12:34:56"/></interface>
    <interface type="bridge"><source bridge="br0"/><target dev="em1"/>
      <mac address="52:54:00:12:34:57"/></interface>
  </devices>
</domain>
"""


@pytest.fixture
def physical_xml(tmp_path: Path) -> Path:
    disk2 = tmp_path / "disk2.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk2), "64M"], check=True)
    p = tmp_path / "physical.xml"
    p.write_text(PHYSICAL.replace("DISK2", str(disk2)))
    return p


def test_parse_physical_xml(physical_xml: Path) -> None:
    src = get("libvirtxml").source(InputOptions(args=(str(physical_xml),)))
    assert src.name == "myhost" and src.hypervisor == "physical"
    assert src.memory == 16 * 1024**3 and src.vcpus == 4
    assert (src.cpu.vendor, src.cpu.sockets, src.cpu.cores, src.cpu.threads) == ("Intel", 1, 4, 1)
    assert src.disks[0].location == "nbd://localhost:43021" and src.disks[0].target_dev == "sda"
    assert src.disks[1].size == 64 * 1024**2 and src.disks[1].format == "raw"
    assert [r.kind for r in src.removables] == ["cdrom"]
    assert [(n.mac, n.vnet, n.vnet_type, n.source_dev) for n in src.nics] == [
        ("52:54:00:12:34:56", "default", "network", "eth0"),
        ("52:54:00:12:34:57", "br0", "bridge", "em1")]
    assert set(src.features) == {"acpi", "apic", "pae"} and src.clock == "utc"


def test_print_source_golden(physical_xml: Path) -> None:
    res = run_v2v("-i", "libvirtxml", str(physical_xml), "--print-source", timeout=60)
    assert res.returncode == 0, res.stderr
    text = res.stdout.replace(str(physical_xml.parent), "TMP")
    check_golden("v2v/print-source-physical.txt", text)


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda s: s[: len(s) // 2], "not well-formed XML"),
        (lambda s: s.replace('name="localhost"', 'name="10.0.0.1"'), "must be on localhost"),
        (lambda s: s.replace(' port="43021"', ""), "has no port"),
        (lambda s: "<notadomain/>", "expected <domain>"),
        (lambda s: s.replace("<name>myhost</name>", ""), "has no <name>"),
    ],
)
def test_bad_xml(tmp_path: Path, physical_xml: Path, mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.xml"
    bad.write_text(mutate(physical_xml.read_text()))
    with pytest.raises(V2VError, match=needle):
        get("libvirtxml").source(InputOptions(args=(str(bad),)))
    assert_one_line_error(run_v2v("-i", "libvirtxml", str(bad), "-o", "null", timeout=60),
                          needle)


def test_xml_without_disks(tmp_path: Path) -> None:
    p = tmp_path / "nodisk.xml"
    p.write_text("<domain type='kvm'><name>x</name><memory>1024</memory><devices/></domain>")
    assert_one_line_error(run_v2v("-i", "libvirtxml", str(p), "-o", "null", timeout=60),
                          "has no disks")


HOSTILE = {
    "xxe": '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           "<domain><name>&x;</name><devices/></domain>",
    "laughs": '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaaaaaaaa">'
              + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 16}">'
                        for p, n in zip("abcdefgh", "bcdefghi", strict=True))
              + "]><domain><name>&i;</name><devices/></domain>",
    "parameter": '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
                 "<domain><name>x</name><devices/></domain>",
    "external-dtd": '<!DOCTYPE domain SYSTEM "file:///etc/passwd">'
                    "<domain><name>x</name><devices/></domain>",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_xml_refused(tmp_path: Path, kind: str) -> None:
    """Entity expansion, XXE and external DTDs: refused before anything is read, one line."""
    p = tmp_path / "hostile.xml"
    p.write_text('<?xml version="1.0"?>\n' + HOSTILE[kind])
    with pytest.raises(V2VError, match="DOCTYPE|entity") as e:
        get("libvirtxml").source(InputOptions(args=(str(p),)))
    assert "\n" not in str(e.value) and "root:" not in str(e.value)
    err = assert_one_line_error(run_v2v("-i", "libvirtxml", str(p), "-o", "null", timeout=60),
                                "hostile.xml")
    assert "root:" not in err and len(err) < 300
