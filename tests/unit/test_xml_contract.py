"""The physical.xml contract: what p2v writes, our `-i libvirtxml` reads back (PROTOCOL.md §5).

p2v's physical_xml.build from a realistic machine (hardware discovery results applied to a
Config, as the engine does) → a file → the libvirtxml input's `Source`.  Everything the
conversion needs must survive: disks (order, NBD endpoint, format, names), NICs (MAC, network or
bridge, source device), CPU vendor/model/topology, vCPUs, memory, firmware, features, clock.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pyv2v.p2v import physical_xml
from pyv2v.p2v.config import Config, apply_hardware
from pyv2v.p2v.hardware import CpuInfo, Hardware
from pyv2v.v2v.inputs import InputOptions, get
from pyv2v.v2v.types import Source

MACS = {"eno1": "3c:ec:ef:00:11:22", "eno2": "3c:ec:ef:00:11:23", "wlp2s0": "a4:c3:f0:aa:bb:cc"}


def machine() -> Hardware:
    """A two-socket server with three disks, a DVD drive and three NICs."""
    return Hardware(
        hostname="db01.example.com", online_cpus=32, memory=(64 << 30) - (300 << 20),
        cpu=CpuInfo(vendor="Intel", model="Skylake-Server", sockets=2, cores=8, threads=2,
                    apic=True, pae=True, acpi=True),
        rtc_basis="utc", rtc_offset=0, disks=["sda", "sdb", "nvme0n1"], removable=["sr0"],
        interfaces=["eno1", "eno2", "wlp2s0"], macs=dict(MACS))


def config() -> Config:
    cfg = Config()
    apply_hardware(cfg, machine())
    cfg.phys_topo = True
    cfg.network_map = ["eno1:ovirtmgmt", "eno2:storage", "default"]
    return cfg


def roundtrip(tmp_path: Path, cfg: Config, endpoints: list[int | str], firmware: str | None,
              hw: Hardware | None = None) -> Source:
    hw = hw or machine()
    xml = physical_xml.build(cfg, endpoints, hw.macs,
                             (hw.cpu.sockets, hw.cpu.cores, hw.cpu.threads), "x86_64", firmware)
    path = tmp_path / "physical.xml"
    path.write_bytes(xml)
    return get("libvirtxml").source(InputOptions(args=(str(path),)))


@pytest.mark.parametrize("firmware,expect", [("bios", "bios"), ("uefi", "uefi"),
                                             (None, "unknown")])
def test_physical_xml_contract(tmp_path: Path, firmware: str | None, expect: str) -> None:
    src = roundtrip(tmp_path, config(), [43021, 43022, 43023], firmware)
    assert (src.name, src.hypervisor) == ("db01", "physical")
    assert src.memory == 64 << 30  # RAM rounded up to a power of two, in bytes
    assert src.vcpus == 32
    assert (src.cpu.vendor, src.cpu.model) == ("Intel", "Skylake-Server")
    assert (src.cpu.sockets, src.cpu.cores, src.cpu.threads) == (2, 8, 2)
    assert src.firmware == expect
    assert list(src.features) == ["acpi", "apic", "pae"]
    assert src.clock == "utc"
    assert [(d.index, d.location, d.format, d.target_dev) for d in src.disks] == [
        (0, "nbd://localhost:43021", "raw", "sda"),
        (1, "nbd://localhost:43022", "raw", "sdb"),
        (2, "nbd://localhost:43023", "raw", "nvme0n1")]
    assert [(r.kind, r.target_dev) for r in src.removables] == [("cdrom", "sr0")]
    assert [(n.mac, n.vnet, n.vnet_type, n.source_dev) for n in src.nics] == [
        (MACS["eno1"], "ovirtmgmt", "network", "eno1"),
        (MACS["eno2"], "storage", "network", "eno2"),
        (MACS["wlp2s0"], "default", "network", "wlp2s0")]


def test_contract_images_sockets_no_topology(tmp_path: Path) -> None:
    """Disks given as image paths are named sda, sdb…; Unix-socket NBD endpoints survive; a
    machine without phys_topo becomes one socket of N cores; no features, localtime clock."""
    hw = Hardware(hostname="(none)", online_cpus=4, memory=3 << 30,
                  cpu=CpuInfo(vendor="AMD", sockets=1, cores=2, threads=2),
                  rtc_basis="localtime", disks=[], interfaces=["eth0"],
                  macs={"eth0": "52:54:00:12:34:56"})
    cfg = Config()
    apply_hardware(cfg, hw)
    cfg.disks = ["/var/tmp/a.img", "/var/tmp/b.img"]
    src = roundtrip(tmp_path, cfg, ["/run/v2v/nbd-a.sock", 50002], "uefi", hw)
    assert src.name == "p2v" and src.memory == 4 << 30 and src.vcpus == 4
    assert (src.cpu.vendor, src.cpu.model) == ("AMD", None)
    assert (src.cpu.sockets, src.cpu.cores, src.cpu.threads) == (1, 4, 1)
    assert [(d.location, d.target_dev) for d in src.disks] == [
        ("nbd+unix:///?socket=/run/v2v/nbd-a.sock", "sda"), ("nbd://localhost:50002", "sdb")]
    assert src.firmware == "uefi" and src.features == () and src.clock == "localtime"
    assert [(n.mac, n.vnet, n.source_dev) for n in src.nics] == [
        ("52:54:00:12:34:56", "default", "eth0")]
    assert src.removables == ()


def test_contract_clock_offset_and_missing_mac(tmp_path: Path) -> None:
    """An RTC running ahead of UTC is an offset clock, read back as its basis only; a NIC whose
    MAC is unknown is still listed (its MAC absent)."""
    cfg = config()
    cfg.rtc_offset = 3600
    hw = machine()
    del hw.macs["eno2"]
    src = roundtrip(tmp_path, cfg, [1, 2, 3], "bios", hw)
    assert src.clock == "variable"
    assert [n.mac for n in src.nics] == [MACS["eno1"], None, MACS["wlp2s0"]]


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_stock_virt_v2v_reads_the_same(tmp_path: Path, firmware: str) -> None:
    """Debian's stock virt-v2v (the reference reader of this contract) sees the same machine in
    the same physical.xml (`--print-source` opens no appliance; the NBD ports are closed)."""
    src = roundtrip(tmp_path, config(), [1, 2, 3], firmware)
    res = subprocess.run(["virt-v2v", "-i", "libvirtxml", str(tmp_path / "physical.xml"),
                          "--print-source"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr
    fields = {k.strip(): v.strip() for k, _, v in
              (ln.partition(":") for ln in res.stdout.splitlines() if ": " in ln)}
    assert fields["source name"] == src.name
    assert fields["hypervisor type"] == src.hypervisor
    assert fields["memory"] == f"{src.memory} (bytes)" and fields["nr vCPUs"] == str(src.vcpus)
    assert (fields["CPU vendor"], fields["CPU model"]) == (src.cpu.vendor, src.cpu.model)
    assert fields["CPU topology"] == (f"sockets: {src.cpu.sockets} cores/socket: "
                                      f"{src.cpu.cores} threads/core: {src.cpu.threads}")
    assert fields["CPU features"] == ",".join(src.features)
    assert fields["firmware"] == src.firmware
    disks = res.stdout.split("disks:")[1].split("removable media:")[0].split()
    assert disks == [str(d.index) for d in src.disks]
    nics = [ln.strip() for ln in res.stdout.split("NICs:")[1].splitlines() if ln.strip()]
    assert nics == [f'Network "{n.vnet}" mac: {n.mac}' for n in src.nics]
