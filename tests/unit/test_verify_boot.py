"""--verify-boot's pure parts: pcap reading, the qemu command line, judging a boot."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pyv2v import log
from pyv2v.errors import V2VError
from pyv2v.v2v import verifyboot
from pyv2v.v2v.types import GuestCaps, TargetDisk
from pyv2v.v2v.verifyboot import Verdict, qemu_argv, sources_from_pcap

MAC = "52:54:00:12:34:56"
OTHER = "52:54:00:00:00:02"   # slirp's own MAC (the gateway answering)


def _mac(m: str) -> bytes:
    return bytes(int(x, 16) for x in m.split(":"))


def arp(src: str, spa: str) -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + _mac(src) + bytes(map(int, spa.split(".")))
    return b"\xff" * 6 + _mac(src) + b"\x08\x06" + body + b"\0" * 10


def ipv4(src: str, ip: str) -> bytes:
    hdr = b"\x45\0\0\x1c" + b"\0" * 8 + bytes(map(int, ip.split("."))) + b"\xff" * 4
    return b"\xff" * 6 + _mac(src) + b"\x08\x00" + hdr


def pcap(*frames: bytes, endian: str = "<") -> bytes:
    out = struct.pack(endian + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for f in frames:
        out += struct.pack(endian + "IIII", 1, 2, len(f), len(f)) + f
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcap_sources(endian: str) -> None:
    v6 = b"\x33\x33\0\0\0\x16" + _mac(OTHER) + b"\x86\xdd" + b"\0" * 40
    data = pcap(ipv4(MAC, "0.0.0.0"), arp(MAC, "10.0.2.15"), arp(OTHER, "10.0.2.2"), v6,
                b"\0" * 5, endian=endian)
    assert sources_from_pcap(data) == {MAC: {"0.0.0.0", "10.0.2.15"},
                                       OTHER: {"10.0.2.2", "ipv6"}}
    assert sources_from_pcap(b"short") == {}


def test_qemu_argv_never_writes_and_isolates_the_network(tmp_path: Path) -> None:
    caps = GuestCaps(block_bus="virtio-scsi", net_bus="virtio-net", video="vga", machine="q35",
                     arch="x86_64", firmware="uefi")
    disks = (TargetDisk("/o/g-sda", "qcow2", "sda", 1), TargetDisk("/o/g-sdb", "raw", "sdb", 1))
    argv = qemu_argv(disks, caps, [MAC], tmp_path, tmp_path / "vars.fd", [4022])
    assert "-snapshot" in argv and argv[argv.index("-machine") + 1] == "q35"
    assert "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:4022-:22" in argv
    assert f"filter-dump,id=f0,netdev=n0,file={tmp_path / 'net0.pcap'}" in argv
    assert f"virtio-net-pci,netdev=n0,mac={MAC}" in argv
    assert "scsi-hd,drive=d0,bus=scsi0.0,scsi-id=0,bootindex=0" in argv
    assert "file=/o/g-sdb,format=raw,if=none,id=d1,cache=unsafe" in argv
    assert any(a.startswith("if=pflash") and "readonly=on" in a for a in argv)


class FakeChild:
    def poll(self) -> int | None:
        return None


def watch(tmp_path: Path, console: str, frames: tuple[bytes, ...] = (),
          macs: tuple[str, ...] = (MAC,), timeout: float = 30, net_grace: float = 90) -> Verdict:
    (tmp_path / "console.log").write_text(console)
    if frames:
        (tmp_path / "net0.pcap").write_bytes(pcap(*frames))
    return verifyboot._watch(FakeChild(), tmp_path, list(macs), timeout,  # type: ignore[arg-type]
                             net_grace=net_grace)


def test_login_with_a_configured_nic_is_a_boot(tmp_path: Path) -> None:
    v = watch(tmp_path, "Debian GNU/Linux 12 deb12 ttyS0\n\ndeb12 login: ",
              (ipv4(MAC, "0.0.0.0"), arp(MAC, "10.0.2.15")))
    assert v.ok and v.outcome == "login" and v.addresses == {MAC: "10.0.2.15"}
    assert v.line().startswith("Boot verification: booted: login after")


def test_initramfs_shell_fails_with_the_evidence(tmp_path: Path) -> None:
    v = watch(tmp_path, "Begin: Running /scripts/local-block ... done.\n"
              "Gave up waiting for root file system device.\n(initramfs) ")
    assert not v.ok and v.outcome == "initramfs" and "Gave up waiting" in v.detail
    assert v.console_tail[-1] == "(initramfs)"


def test_login_without_network_fails_after_the_grace(tmp_path: Path) -> None:
    v = watch(tmp_path, "host login: ", (ipv4(MAC, "0.0.0.0"),), net_grace=1)
    assert not v.ok and v.outcome == "login" and v.dhcp_only == [MAC]
    assert "no NIC configured" in v.detail


def test_network_without_console_is_a_boot(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifyboot, "CONSOLE_GRACE", 1.0)
    v = watch(tmp_path, "", (arp(MAC, "192.168.1.5"),))
    assert v.ok and v.outcome == "network" and v.addresses == {MAC: "192.168.1.5"}


def test_link_traffic_alone_counts_as_up(tmp_path: Path) -> None:
    v6 = b"\x33\x33\0\0\0\x16" + _mac(MAC) + b"\x86\xdd" + b"\0" * 40
    v = watch(tmp_path, "h login: ", (v6,))
    assert v.ok and v.addresses == {MAC: "ipv6"} and "up (IPv6 link traffic only)" in v.line()


def test_timeout(tmp_path: Path) -> None:
    v = watch(tmp_path, "Booting from Hard Disk...", timeout=1)
    assert not v.ok and v.outcome == "timeout"


def test_report_line_event_and_exit(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(json_mode=True)
    try:
        with pytest.raises(V2VError, match=r"initramfs \(ALERT! .*last console lines: x \| y"):
            verifyboot.report(Verdict(False, "initramfs", 31.0, detail="ALERT! /dev/sda2 does "
                                      "not exist", console_tail=["x", "y"]))
    finally:
        log.configure(json_mode=False)
    events = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert events[0]["type"] == "verify-boot" and events[0]["ok"] is False
    assert "Boot verification: FAILED: initramfs" in events[1]["message"]


def test_refuses_an_output_without_local_files(tmp_path: Path) -> None:
    caps = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga", machine="pc",
                     arch="x86_64", firmware="bios")
    with pytest.raises(V2VError, match="wrote no local disk file"):
        verifyboot.verify((TargetDisk("nbd://localhost:10809", "raw", "vda", 1),), caps, [MAC])


@pytest.mark.parametrize("flag,ok,rc", [(True, True, 0), (True, False, 1), (False, False, 0)])
def test_cli_verifies_the_written_disks_after_the_conversion(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        flag: bool, ok: bool, rc: int) -> None:
    from pyv2v.v2v import cli, pipeline
    from pyv2v.v2v.types import Source, TargetMeta, TargetNicPlan

    caps = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga", machine="pc",
                     arch="x86_64", firmware="bios")
    disk = TargetDisk(str(tmp_path / "g-sda"), "raw", "vda", 1)
    meta = TargetMeta(name="g", source=Source("g", "unknown", 1, 1, ()), inspect=None,
                      caps=caps, disks=(disk,), nics=(TargetNicPlan(MAC, None, "default"),))
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(pipeline, "run", lambda plan, monitor: meta)

    def fake_verify(*a: object, **k: object) -> Verdict:
        calls.append(a)
        return Verdict(ok, "login", 40.0, {MAC: "10.0.2.15"} if ok else {},
                       detail="" if ok else "no NIC")

    monkeypatch.setattr(verifyboot, "verify", fake_verify)
    argv = ["-i", "disk", str(tmp_path / "g.img"), "-o", "local", "-os", str(tmp_path)]
    assert cli.main(argv + (["--verify-boot"] if flag else [])) == rc
    assert calls == ([((disk,), caps, [MAC])] if flag else [])
    out, err = capsys.readouterr()
    if flag:
        assert ("Boot verification: booted: login" if ok else "Boot verification: FAILED") in out
    if rc:
        assert "did not boot as expected: login (no NIC)" in err and "Traceback" not in err
