"""pyv2v_harness.bootcheck (the test tool): the fixture's marker lines, the qemu command line, and
the watcher loop against a fake qemu-system-x86_64 (outcomes, early exit, qemu always killed)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from console_samples import INITRAMFS, KERNEL, LOGIN, MARKER, PANIC, SYSTEMD

from pyv2v import process
from pyv2v_harness import bootcheck
from pyv2v_harness.bootcheck import BootResult, classify, markers


def test_login_prompt_followed_by_kernel_message_and_marker() -> None:
    text = (KERNEL + "\r\r\nDebian GNU/Linux 12 debian12-physical ttyS0\r\n\r\n"
            "debian12-physical login: [   65.549228] powernow_k8: Power state transitions not "
            "supported\r\n" + MARKER)
    assert classify(text, want_marker=True) == "login"


def test_login_waits_for_marker_when_asked() -> None:
    assert classify(KERNEL + LOGIN, want_marker=True) is None
    assert classify(KERNEL + LOGIN + MARKER, want_marker=True) == "login"
    assert classify(KERNEL + MARKER + LOGIN, want_marker=True) == "login"


def test_failures_do_not_wait_for_a_marker() -> None:
    assert classify(KERNEL + PANIC, want_marker=True) == "panic"
    assert classify(KERNEL + INITRAMFS, want_marker=True) == "initramfs"
    assert classify(KERNEL + LOGIN) == "login"


def test_markers_are_extracted_clean() -> None:
    text = "\x1b[0m" + SYSTEMD + MARKER + "noise PYV2V-MARKER boot: ok\r\n" + LOGIN
    assert markers(text) == ["PYV2V-MARKER net: lo UNKNOWN 127.0.0.1/8 | eth0 UP 10.0.2.15/24",
                             "PYV2V-MARKER boot: ok"]


@pytest.mark.parametrize(("marker", "up"), [
    ("PYV2V-MARKER net: lo UNKNOWN 127.0.0.1/8 | eth0 UP 10.0.2.15/24", {"eth0": "10.0.2.15"}),
    ("PYV2V-MARKER net: eth0 UP 192.168.1.5/24", {"eth0": "192.168.1.5"}),
    ("PYV2V-MARKER net: lo UNKNOWN 127.0.0.1/8", {}),
    ("PYV2V-MARKER net: lo UNKNOWN 127.0.0.1/8 | eth0 DOWN", {}),
    ("PYV2V-MARKER net: ", {}),
])
def test_net_up(marker: str, up: dict[str, str]) -> None:
    r = BootResult("login", [marker])
    assert r.up_interfaces == up
    assert r.net_up is bool(up)


def _argv(**kw: object) -> list[str]:
    args: dict[str, object] = dict(
        bus="ide", firmware="bios", fmt="raw", nic_model="e1000", mac=bootcheck.DEFAULT_MAC,
        memory_mb=1024, cpus=1, snapshot=True, console_log=Path("/tmp/c.log"), vars_file=None)
    args.update(kw)
    return bootcheck.qemu_argv("/img.raw", **args)  # type: ignore[arg-type]


def test_qemu_argv_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYV2V_ACCEL", "tcg")
    argv = _argv()
    assert argv[0] == "qemu-system-x86_64"
    assert ["-accel", "tcg"] == argv[1:3]
    for flag in ("-nodefaults", "-snapshot", "-no-reboot"):
        assert flag in argv
    assert argv[argv.index("-display") + 1] == "none"
    assert argv[argv.index("-serial") + 1] == "file:/tmp/c.log"
    assert "user,id=n0" in argv
    assert f"e1000,netdev=n0,mac={bootcheck.DEFAULT_MAC}" in argv
    assert "ide-hd,drive=d0,bus=ide.0,unit=0,bootindex=0" in argv
    assert not any("pflash" in a for a in argv)


def test_qemu_argv_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYV2V_ACCEL", "tcg")
    assert "virtio-blk-pci,drive=d0,bootindex=0" in _argv(bus="virtio-blk")
    scsi = _argv(bus="virtio-scsi")
    assert "virtio-scsi-pci,id=scsi0" in scsi and any(a.startswith("scsi-hd") for a in scsi)
    sata = _argv(bus="sata")
    assert "ahci,id=ahci0" in sata and "ide-hd,drive=d0,bus=ahci0.0,bootindex=0" in sata
    assert "-snapshot" not in _argv(snapshot=False)
    assert any("format=qcow2" in a for a in _argv(fmt="qcow2"))
    assert "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01" in _argv(
        nic_model="virtio-net-pci", mac="52:54:00:00:00:01")
    two = _argv(extra_nics=[("virtio-net-pci", "52:54:00:00:00:02")])
    assert "user,id=n1,net=10.0.3.0/24" in two
    assert "virtio-net-pci,netdev=n1,mac=52:54:00:00:00:02" in two
    uefi = _argv(firmware="uefi", vars_file=Path("/tmp/vars.fd"))
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={bootcheck.OVMF_CODE}" in uefi
    assert "if=pflash,format=raw,unit=1,file=/tmp/vars.fd" in uefi
    extra = _argv(extra_disks=["/b.raw", ("/c.qcow2", "qcow2")])
    assert any("file=/c.qcow2,format=qcow2" in a for a in extra)
    assert "ide-hd,drive=d2,bus=ide.1,unit=0" in extra
    with pytest.raises(ValueError):
        _argv(bus="floppy")


FAKE_QEMU = """\
#!{python}
import os, sys, time
args = sys.argv[1:]
log = args[args.index("-serial") + 1].split(":", 1)[1]
open(os.environ["FAKE_PIDFILE"], "w").write(str(os.getpid()))
with open(log, "wb") as f:
    f.write(open(os.environ["FAKE_CONSOLE"], "rb").read())
if os.environ.get("FAKE_EXIT"):
    sys.stderr.write("qemu-system-x86_64: -drive file=x: Could not open 'x'\\n")
    sys.exit(int(os.environ["FAKE_EXIT"]))
time.sleep(300)
"""


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "qemu-system-x86_64"
    fake.write_text(FAKE_QEMU.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("PYV2V_ACCEL", "tcg")
    monkeypatch.setenv("FAKE_PIDFILE", str(tmp_path / "pid"))
    monkeypatch.setenv("FAKE_CONSOLE", str(tmp_path / "console.in"))
    (tmp_path / "disk.raw").write_bytes(b"\0" * 512)
    return tmp_path


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(("console", "outcome"), [
    (KERNEL + LOGIN + MARKER, "login"),
    (KERNEL + INITRAMFS, "initramfs"),
    (KERNEL + PANIC, "panic"),
    (KERNEL, "timeout"),
])
def test_boot_outcomes_and_qemu_is_killed(fake_qemu: Path, console: str, outcome: str) -> None:
    (fake_qemu / "console.in").write_text(console)
    start = time.monotonic()
    r = bootcheck.boot(fake_qemu / "disk.raw", timeout=3, console_log=fake_qemu / "out.log")
    assert r.outcome == outcome
    assert time.monotonic() - start < 15
    assert r.console_log == fake_qemu / "out.log" and r.console_log.read_bytes().decode() == console
    assert _gone(int((fake_qemu / "pid").read_text()))
    assert not [c for c in process.live_children() if "qemu" in c.argv[0]]
    if outcome == "login":
        assert r.net_up and r.markers
    if outcome == "initramfs":
        assert "ALERT!" in r.detail or "Gave up" in r.detail


def test_login_without_marker_after_grace(fake_qemu: Path) -> None:
    (fake_qemu / "console.in").write_text(KERNEL + LOGIN)
    r = bootcheck.boot(fake_qemu / "disk.raw", timeout=60, marker_grace=1)
    assert r.outcome == "login" and r.markers == [] and not r.net_up
    assert r.seconds < 30
    assert r.console_log is not None and r.console_log.exists()
    r.console_log.unlink()


def test_qemu_error(fake_qemu: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fake_qemu / "console.in").write_text("")
    monkeypatch.setenv("FAKE_EXIT", "1")
    r = bootcheck.boot(fake_qemu / "disk.raw", timeout=30, console_log=fake_qemu / "o.log")
    assert r.outcome == "qemu-error"
    assert "Could not open" in r.detail
    assert r.seconds < 20


def test_qemu_killed_on_exception(fake_qemu: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fake_qemu / "console.in").write_text(KERNEL)
    pidfile = fake_qemu / "pid"

    def broken_watch(*args: object) -> BootResult:
        while not pidfile.exists() or not pidfile.read_text():
            time.sleep(0.05)
        raise RuntimeError("watcher blew up")

    monkeypatch.setattr(bootcheck, "_watch", broken_watch)
    with pytest.raises(RuntimeError, match="blew up"):
        bootcheck.boot(fake_qemu / "disk.raw", console_log=fake_qemu / "o.log")
    assert _gone(int(pidfile.read_text()))
    assert not [c for c in process.live_children() if "qemu" in c.argv[0]]


def test_missing_image() -> None:
    with pytest.raises(FileNotFoundError):
        bootcheck.boot("/nonexistent/disk.raw")


def test_cli_reports_outcome(fake_qemu: Path) -> None:
    (fake_qemu / "console.in").write_text(KERNEL + INITRAMFS)
    rc = bootcheck.main([str(fake_qemu / "disk.raw"), "--bus", "virtio-blk", "--timeout", "5",
                         "--console-log", str(fake_qemu / "o.log")])
    assert rc == 1
