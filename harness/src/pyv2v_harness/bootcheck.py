"""Test tool: boot a disk image under qemu and tell how far it got (login, initramfs, panic).

`boot(image, bus=..., firmware=...)` runs qemu-system-x86_64 (accelerator from pyv2v.accel, user
networking so the guest gets DHCP, `-snapshot` so the image is never written) with the serial
console going to a log file that it watches.  It returns as soon as the outcome is known — a
login prompt (plus the fixture's PYV2V-MARKER line when `wait_marker`), an initramfs shell, a
kernel panic — or at the timeout, and it always kills qemu.  Reading the console is the
product's `pyv2v.bootcheck`; what is fixture-specific (the marker line the fixtures' service
prints, with the guest's interfaces) is here.
`python -m pyv2v_harness.bootcheck IMAGE --bus virtio-blk [--uefi]` is the CLI.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyv2v import accel, process
from pyv2v import bootcheck as console
from pyv2v.bootcheck import OUTCOMES, clean

__all__ = ["BUSES", "MARKER", "NIC_MODELS", "OUTCOMES", "BootResult", "boot", "classify", "clean",
           "markers", "qemu_argv"]

BUSES = ("ide", "sata", "virtio-blk", "virtio-scsi")
NIC_MODELS = ("e1000", "virtio-net-pci", "rtl8139", "vmxnet3")
DEFAULT_MAC = "52:54:00:12:34:56"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
MARKER = "PYV2V-MARKER"   # printed on the console by the fixtures' pyv2v-marker.service

_MARKER_LINE = re.compile(rf"^.*?({MARKER} .*?)\s*$", re.M)
_NET_UP = re.compile(r"(?:^|\| |net: )(\S+) UP (\d+\.\d+\.\d+\.\d+)/\d+")


@dataclass
class BootResult:
    outcome: str                      # one of OUTCOMES
    markers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    console_log: Path | None = None
    detail: str = ""                  # why (qemu's stderr, the matching console line, ...)

    @property
    def net_up(self) -> bool:
        """A marker shows a non-loopback interface UP with an IPv4 address."""
        return bool(self.up_interfaces)

    @property
    def up_interfaces(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for m in self.markers:
            for iface, addr in _NET_UP.findall(m):
                if iface != "lo" and not addr.startswith("127."):
                    found[iface] = addr
        return found

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail and self.outcome != "login" else ""
        lines = [f"outcome: {self.outcome}{extra} after {self.seconds:.1f} s"]
        lines += [f"marker: {m}" for m in self.markers]
        if self.console_log:
            lines.append(f"console log: {self.console_log}")
        return "\n".join(lines)


def markers(text: str) -> list[str]:
    """The fixture's PYV2V-MARKER lines in the console text."""
    return [m.group(1) for m in _MARKER_LINE.finditer(clean(text))]


def classify(text: str, *, want_marker: bool = False) -> str | None:
    """`pyv2v.bootcheck.classify`; with `want_marker`, "login" also needs a PYV2V-MARKER line."""
    outcome = console.classify(text)
    if outcome == "login" and want_marker and not markers(text):
        return None
    return outcome


def _drive(i: int, path: str, fmt: str, bus: str) -> list[str]:
    boot = ",bootindex=0" if i == 0 else ""
    args = ["-drive", f"file={path},format={fmt},if=none,id=d{i},cache=unsafe"]
    if bus == "ide":
        args += ["-device", f"ide-hd,drive=d{i},bus=ide.{i // 2},unit={i % 2}{boot}"]
    elif bus == "sata":
        args += ["-device", f"ide-hd,drive=d{i},bus=ahci0.{i}{boot}"]
    elif bus == "virtio-blk":
        args += ["-device", f"virtio-blk-pci,drive=d{i}{boot}"]
    elif bus == "virtio-scsi":
        args += ["-device", f"scsi-hd,drive=d{i},bus=scsi0.0,scsi-id={i}{boot}"]
    else:
        raise ValueError(f"unknown bus {bus!r} (one of {', '.join(BUSES)})")
    return args


def qemu_argv(
    image: str | Path, *, bus: str, firmware: str, fmt: str, nic_model: str, mac: str,
    memory_mb: int, cpus: int, snapshot: bool, console_log: Path, vars_file: Path | None,
    extra_disks: Sequence[str | Path | tuple[str | Path, str]] = (),
    extra_nics: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The qemu command line (pure: no files are touched)."""
    argv = ["qemu-system-x86_64", *accel.qemu_args(), "-machine", "pc", "-m", str(memory_mb),
            "-smp", str(cpus), "-nodefaults", "-display", "none", "-no-user-config",
            "-monitor", "none", "-serial", f"file:{console_log}", "-no-reboot"]
    if firmware == "uefi":
        if vars_file is None:
            raise ValueError("uefi needs a vars file")
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}"]
    elif firmware != "bios":
        raise ValueError(f"unknown firmware {firmware!r}")
    if bus == "sata":
        argv += ["-device", "ahci,id=ahci0"]
    elif bus == "virtio-scsi":
        argv += ["-device", "virtio-scsi-pci,id=scsi0"]
    disks: list[tuple[str, str]] = [(str(image), fmt)]
    for d in extra_disks:
        disks.append((str(d[0]), d[1]) if isinstance(d, tuple) else (str(d), "raw"))
    for i, (path, dfmt) in enumerate(disks):
        argv += _drive(i, path, dfmt, bus)
    argv += ["-netdev", "user,id=n0", "-device", f"{nic_model},netdev=n0,mac={mac}"]
    for i, (model, nic_mac) in enumerate(extra_nics, start=1):   # user network 10.0.(2+i).0/24
        argv += ["-netdev", f"user,id=n{i},net=10.0.{2 + i}.0/24",
                 "-device", f"{model},netdev=n{i},mac={nic_mac}"]
    if snapshot:
        argv.append("-snapshot")
    return argv


def boot(
    image: str | Path,
    *,
    bus: str = "ide",
    firmware: str = "bios",
    fmt: str = "raw",
    nic_model: str = "e1000",
    mac: str = DEFAULT_MAC,
    memory_mb: int = 1024,
    cpus: int = 1,
    timeout: float = 600.0,  # ~45 s alone under TCG; minutes with another job on 2 cores
    snapshot: bool = True,
    console_log: str | Path | None = None,
    extra_disks: Sequence[str | Path | tuple[str | Path, str]] = (),
    extra_nics: Sequence[tuple[str, str]] = (),
    wait_marker: bool = True,
    marker_grace: float = 180.0,
) -> BootResult:
    """Boot `image` and report how far it got (see the module docstring).

    After a login prompt, wait at most `marker_grace` more seconds for a marker line; if none
    comes the outcome is still "login", with no markers.  The serial log is kept at
    `console_log` (default: a new file under the temp directory).  `extra_nics`: more
    (model, MAC) NICs after the first, each on its own user network 10.0.(2+i).0/24.
    """
    if not Path(image).exists():
        raise FileNotFoundError(str(image))
    log_path = Path(console_log) if console_log else Path(tempfile.mkstemp(
        prefix=f"pyv2v-console-{Path(image).stem}-", suffix=".log")[1])
    log_path.write_bytes(b"")
    tmpdir = Path(tempfile.mkdtemp(prefix="pyv2v-boot-"))
    vars_file = None
    if firmware == "uefi":
        vars_file = tmpdir / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, vars_file)
    argv = qemu_argv(image, bus=bus, firmware=firmware, fmt=fmt, nic_model=nic_model, mac=mac,
                     memory_mb=memory_mb, cpus=cpus, snapshot=snapshot, console_log=log_path,
                     vars_file=vars_file, extra_disks=extra_disks, extra_nics=extra_nics)
    stderr_path = tmpdir / "qemu.stderr"
    start = time.monotonic()
    with open(stderr_path, "w") as err:
        child = process.spawn(argv, stdout=process.DEVNULL, stderr=err.fileno())
    try:
        return _watch(child, log_path, stderr_path, start, timeout, wait_marker, marker_grace)
    finally:
        child.terminate()
        shutil.rmtree(tmpdir, ignore_errors=True)


def _watch(child: process.Child, log_path: Path, stderr_path: Path, start: float,
           timeout: float, wait_marker: bool, marker_grace: float) -> BootResult:
    login_at: float | None = None
    while True:
        time.sleep(0.5)
        exited = child.poll() is not None       # before reading, so no output is missed
        text = log_path.read_bytes().decode(errors="replace")
        now = time.monotonic()
        outcome, detail = classify(text, want_marker=wait_marker), ""
        if outcome is None and classify(text) == "login":
            login_at = login_at or now
            if now - login_at >= marker_grace or now - start >= timeout:
                outcome, detail = "login", "no marker line"
        if outcome is None and exited:
            err = stderr_path.read_text(errors="replace").strip()
            outcome = "qemu-error"
            detail = err.splitlines()[-1] if err else f"qemu exited with status {child.poll()}"
        elif outcome is None and now - start >= timeout:
            outcome, detail = "timeout", f"no outcome within {timeout:g} s"
        elif outcome in ("panic", "initramfs"):
            detail = console.evidence(text, outcome)
        if outcome:
            return BootResult(outcome, markers(text), round(now - start, 1), log_path, detail)


def main(argv: list[str] | None = None) -> int:
    """CLI: boot IMAGE, print the result; exit 0 on a login prompt, 1 otherwise."""
    import argparse

    from pyv2v import log
    from pyv2v.errors import V2VError

    ap = argparse.ArgumentParser(prog="python -m pyv2v_harness.bootcheck",
                                 description="Boot a disk image under qemu; report how far it got.")
    ap.add_argument("image")
    ap.add_argument("--bus", choices=BUSES, default="ide")
    ap.add_argument("--uefi", action="store_true", help="boot with OVMF instead of SeaBIOS")
    ap.add_argument("--format", dest="fmt", choices=("raw", "qcow2"), default=None,
                    help="image format (default: from the file name, else raw)")
    ap.add_argument("--nic-model", choices=NIC_MODELS, default="e1000")
    ap.add_argument("--mac", default=DEFAULT_MAC)
    ap.add_argument("--memory", type=int, default=1024, help="MiB")
    ap.add_argument("--timeout", type=float, default=240.0)
    ap.add_argument("--console-log", help="keep the serial console log here")
    ap.add_argument("--no-wait-marker", action="store_true",
                    help="a login prompt is enough (do not wait for a PYV2V-MARKER line)")
    args = ap.parse_args(argv)
    log.configure(prog="bootcheck")
    fmt = args.fmt or ("qcow2" if args.image.endswith(".qcow2") else "raw")
    log.message(f"Booting {args.image} ({fmt}, {args.bus}, {'uefi' if args.uefi else 'bios'})")
    try:
        result = boot(args.image, bus=args.bus, firmware="uefi" if args.uefi else "bios",
                      fmt=fmt, nic_model=args.nic_model, mac=args.mac, memory_mb=args.memory,
                      timeout=args.timeout, console_log=args.console_log,
                      wait_marker=not args.no_wait_marker)
    except (OSError, ValueError, V2VError) as e:
        log.error(str(e))
        return 2
    log.info(str(result))
    if result.markers:
        log.info(f"network up: {'yes' if result.net_up else 'no'}")
    return 0 if result.outcome == "login" else 1


if __name__ == "__main__":
    import sys

    sys.exit(main())
