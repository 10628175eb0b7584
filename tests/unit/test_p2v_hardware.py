"""Hardware discovery against fake /sys and /proc trees (PROTOCOL.md §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.p2v import config, hardware
from pyv2v.p2v.config import Config

LSCPU = """Architecture:                    x86_64
CPU(s):                          8
Vendor ID:                       GenuineIntel
Model name:                      Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
Thread(s) per core:              2
Core(s) per socket:              2
Socket(s):                       2
Flags:                           fpu vme de pse tsc msr pae mce cx8 apic sep mtrr
"""


def put(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text + "\n")


def fake_machine(root: Path, root_devno: str = "8:17") -> Path:
    """sda (with partitions), sdb holding / on sdb1, nvme0n1, an empty USB card reader sdc,
    a loop device, a CD drive; eth0, enp1s0, wlan0, lo, virbr0; 4 CPUs, 8 GB."""
    put(root, "proc/sys/kernel/hostname", "server1.example.com")
    put(root, "proc/meminfo", "MemTotal:        8056780 kB\nMemFree:   100 kB")
    put(root, "proc/self/mountinfo",
        f"22 1 0:21 / /proc rw - proc proc rw\n27 1 {root_devno} / / rw - ext4 /dev/x rw")
    put(root, "sys/devices/system/cpu/online", "0-3")
    for dev, num, parts in (("sda", "8:0", ["sda1", "sda2"]), ("sdb", "8:16", ["sdb1"]),
                            ("nvme0n1", "259:0", ["nvme0n1p1"]), ("sdc", "8:32", []),
                            ("loop0", "7:0", []), ("sr0", "11:0", [])):
        put(root, f"sys/block/{dev}/dev", num)
        put(root, f"sys/block/{dev}/removable", "1" if dev in ("sdc", "sr0") else "0")
        put(root, f"sys/block/{dev}/size", "0" if dev == "sdc" else "2097152")
        for i, part in enumerate(parts, 1):
            major, minor = num.split(":")
            put(root, f"sys/block/{dev}/{part}/dev", f"{major}:{int(minor) + i}")
    (root / "sys/firmware/acpi").mkdir(parents=True)
    for nic, mac in (("eth0", "52:54:00:aa:bb:01"), ("enp1s0", "52:54:00:aa:bb:02"),
                     ("wlan0", "52:54:00:aa:bb:03"), ("lo", "00:00:00:00:00:00"),
                     ("virbr0", "52:54:00:aa:bb:04")):
        put(root, f"sys/class/net/{nic}/address", mac)
    return root


def test_discover_fake_machine(tmp_path: Path) -> None:
    hw = hardware.discover(str(fake_machine(tmp_path)), lscpu_text=LSCPU)
    assert hw.hostname == "server1.example.com"
    assert hw.online_cpus == 4 and hw.memory == 8056780 * 1024
    assert hw.disks == ["nvme0n1", "sda"]  # sdb holds /, sdc has no medium, loop ignored
    assert hw.removable == ["sr0"]
    assert hw.interfaces == ["enp1s0", "eth0", "wlan0"]
    assert hw.macs["eth0"] == "52:54:00:aa:bb:01"
    assert (hw.cpu.vendor, hw.cpu.sockets, hw.cpu.cores, hw.cpu.threads) == ("Intel", 2, 2, 2)
    assert hw.cpu.apic and hw.cpu.pae and hw.cpu.acpi
    assert hw.rtc_basis == "unknown"  # no /sys/class/rtc in the tree


def test_root_on_whole_disk_and_on_device_mapper(tmp_path: Path) -> None:
    root = fake_machine(tmp_path / "a", root_devno="8:0")  # / is the whole of sda
    assert hardware.discover(str(root), "").disks == ["nvme0n1", "sdb"]
    root = fake_machine(tmp_path / "b", root_devno="253:0")  # / on dm-0 over nvme0n1p1
    put(root, "sys/block/dm-0/dev", "253:0")
    (root / "sys/block/dm-0/slaves/nvme0n1p1").mkdir(parents=True)
    put(root, "sys/class/block/nvme0n1p1/dev", "259:1")
    assert hardware.discover(str(root), "").disks == ["sda", "sdb"]


def test_cciss_names_and_amd(tmp_path: Path) -> None:
    put(tmp_path, "sys/block/cciss!c0d0/dev", "104:0")
    assert hardware.find_disks(str(tmp_path)) == (["cciss/c0d0"], [])
    cpu = hardware.parse_lscpu("Vendor ID: AuthenticAMD\nFlags: fpu\n")
    assert cpu.vendor == "AMD" and not cpu.apic and not cpu.pae


def test_rtc(tmp_path: Path) -> None:
    now = 1_700_000_000.0
    put(tmp_path, "sys/class/rtc/rtc0/since_epoch", str(int(now)))
    assert hardware.read_rtc(str(tmp_path), now, gmtoff=0) == ("utc", 0)
    assert hardware.read_rtc(str(tmp_path), now, gmtoff=3600) == ("utc", 0)
    put(tmp_path, "sys/class/rtc/rtc0/since_epoch", str(int(now) + 3600))
    assert hardware.read_rtc(str(tmp_path), now, gmtoff=3600) == ("localtime", 0)
    assert hardware.read_rtc(str(tmp_path), now, gmtoff=-18000) == ("utc", 3600)
    put(tmp_path, "sys/class/rtc/rtc0/since_epoch", str(int(now) + 86400))
    assert hardware.read_rtc(str(tmp_path), now, gmtoff=0) == ("unknown", 0)


def test_helpers() -> None:
    assert hardware.parse_cpu_list("0-3,6,8-9") == 7
    assert hardware.round_up_pow2(8056780 * 1024) == 8 << 30
    assert hardware.round_up_pow2(4 << 30) == 4 << 30


def test_real_machine_does_not_crash() -> None:
    hw = hardware.discover()
    assert hw.online_cpus >= 1 and hw.memory > 0


def test_boot_firmware(tmp_path: Path) -> None:
    root = fake_machine(tmp_path / "bios")  # /sys/firmware/acpi only
    assert hardware.discover(str(root), "").firmware == "bios"
    root = fake_machine(tmp_path / "uefi")
    (root / "sys/firmware/efi/efivars").mkdir(parents=True)
    assert hardware.discover(str(root), "").firmware == "uefi"
    assert hardware.find_firmware(str(tmp_path / "nothing")) == "unknown"


def test_conversion_writes_the_firmware(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run passes the discovered firmware on to physical.xml (<os firmware='efi'>)."""
    from pyv2v.p2v import conversion, physical_xml, wrapper

    written: list[bytes] = []

    def stop(tmpdir: str, cfg: Config, rdir: str, xml: bytes, colours: bool) -> None:
        written.append(xml)
        raise RuntimeError("stop here")

    monkeypatch.setattr(wrapper, "write_local_files", stop)
    monkeypatch.setattr(conversion, "open_data_conn", lambda *a, **kw: FakeConn())
    monkeypatch.setattr(config, "check_disk", lambda disk: 1 << 30)  # no /dev/sda here
    for firmware, attr in (("uefi", b'firmware="efi"'), ("bios", b'firmware="bios"')):
        hw = hardware.discover(str(fake_machine(tmp_path / firmware)), "")
        hw.firmware = firmware
        cfg = Config(server="conv", identity=f"file://{key(tmp_path)}", disks=["sda"],
                     skip_test_connection=True, known_hosts=str(tmp_path / "kh"),
                     guestname="g", cores=1, memory=1 << 30)
        conv = conversion.Conversion(cfg, hw=hw)
        monkeypatch.setattr(conv.session(), "check_host_key", lambda: None)
        with pytest.raises(RuntimeError, match="stop here"):
            conv._run()
        conv.close()
        assert attr in written[-1]
        assert written[-1] == physical_xml.build(cfg, [50000], hw.macs, firmware=firmware)


class FakeConn:
    remote_port = 50000
    endpoint = 50000

    def close(self) -> None:
        pass


def key(tmp_path: Path) -> Path:
    k = tmp_path / "id"
    k.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
    return k
