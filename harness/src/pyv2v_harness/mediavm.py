"""Booting p2v boot media in a qemu VM (the "physical machine") and watching its serial console.

`MediaVM(...).run(until=…)` starts qemu (TCG/KVM per accel.py, user-mode networking so the host
is 10.0.2.2, the source disk attached read-only through a snapshot overlay), follows the serial
log, records when each watched pattern first appeared (seconds from power-on) and returns when
the VM powered itself off, when `until` appeared, or at the timeout (the VM is then killed).
The qemu process is spawned through process.py: nothing outlives the test.
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

from .bootcheck import OVMF_CODE, OVMF_VARS

ANSI = re.compile(
    r"\x1b(?:\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|[()][0-9A-Za-z]|.)"
)


def plain(text: str) -> str:
    """Serial console text without terminal escape sequences."""
    return ANSI.sub("", text)


@dataclass
class VMResult:
    powered_off: bool  # qemu exited by itself (the guest powered off)
    rc: int | None
    seconds: float
    seen: dict[str, float] = field(default_factory=dict)  # pattern → seconds after power-on
    console: str = ""
    console_log: Path = field(default_factory=Path)

    @property
    def text(self) -> str:
        return plain(self.console)


@dataclass
class MediaVM:
    iso: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = ""
    disks: Sequence[Path] = ()
    uefi: bool = False
    memory_mb: int = 2048
    # Paravirtual devices: under TCG every emulated e1000 frame and IDE sector costs exits, and
    # the pull is the VM's NBD server behind ssh.  The disks stay sd* (virtio-scsi), as on a
    # server's SAS/SATA controller.  2 vCPUs (MTTCG): ssh's cipher and nbdkit run side by side.
    nic_model: str = "virtio-net-pci"
    disk_bus: str = "virtio-scsi"  # or "ide"
    cpus: int = 2
    mac: str = "52:54:00:12:34:56"
    console_log: Path | None = None

    def argv(self, log: Path, vars_file: Path | None) -> list[str]:
        argv = [
            "qemu-system-x86_64",
            *accel.qemu_args(),
            "-machine",
            "pc",
            "-m",
            str(self.memory_mb),
            "-smp",
            str(self.cpus),
            "-nodefaults",
            "-display",
            "none",
            "-no-user-config",
            "-monitor",
            "none",
            "-serial",
            f"file:{log}",
            "-no-reboot",
            "-vga",
            "std",
        ]
        if self.uefi and vars_file is not None:
            argv += [
                "-drive",
                f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                "-drive",
                f"if=pflash,format=raw,unit=1,file={vars_file}",
            ]
        if self.disks and self.disk_bus == "virtio-scsi":
            argv += ["-device", "virtio-scsi-pci,id=scsi0"]
        for i, disk in enumerate(self.disks):  # read-only source: writes go to an overlay
            if self.disk_bus == "virtio-scsi":
                argv += [
                    "-drive", f"file={disk},format=raw,if=none,id=d{i},snapshot=on",
                    "-device", f"scsi-hd,drive=d{i},bus=scsi0.0,scsi-id={i},lun=0",
                ]
            else:
                argv += ["-drive", f"file={disk},format=raw,if=ide,index={i},snapshot=on"]
        if self.iso is not None:
            argv += [
                "-drive",
                f"file={self.iso},format=raw,media=cdrom,if=ide,index=2,readonly=on",
                "-boot",
                "order=d",
            ]
        if self.kernel is not None:
            argv += [
                "-kernel",
                str(self.kernel),
                "-initrd",
                str(self.initrd or ""),
                "-append",
                self.append,
            ]
        argv += ["-netdev", "user,id=n0", "-device", f"{self.nic_model},netdev=n0,mac={self.mac}"]
        return argv

    def run(
        self, *, watch: Sequence[str] = (), until: str | None = None, timeout: float = 900.0
    ) -> VMResult:
        """Boot; stop at power-off, at the first `until` match (regex, on plain text) or at
        `timeout`.  `watch` regexes get their first-seen times recorded."""
        tmp = Path(tempfile.mkdtemp(prefix="pyv2v-mediavm-"))
        log = self.console_log or Path(tempfile.mkstemp(prefix="pyv2v-mediavm-", suffix=".log")[1])
        log.write_bytes(b"")
        vars_file = None
        if self.uefi:
            vars_file = tmp / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, vars_file)
        patterns = [*watch, *([until] if until else [])]
        seen: dict[str, float] = {}
        start = time.monotonic()
        with open(tmp / "qemu.stderr", "w") as err:
            child = process.spawn(
                self.argv(log, vars_file), stdout=process.DEVNULL, stderr=err.fileno()
            )
        rc: int | None = None
        try:
            while True:
                rc = child.poll()
                text = plain(log.read_text(errors="replace"))
                now = time.monotonic() - start
                for p in patterns:
                    if p not in seen and re.search(p, text):
                        seen[p] = round(now, 1)
                if rc is not None or (until and until in seen) or now > timeout:
                    break
                time.sleep(1)
        finally:
            if rc is None:
                child.terminate()
            stderr = (tmp / "qemu.stderr").read_text(errors="replace")
            shutil.rmtree(tmp, ignore_errors=True)
        console = log.read_text(errors="replace") if log.exists() else ""
        if rc not in (None, 0):
            console += f"\n[qemu exited {rc}: {stderr.strip()[-500:]}]"
        return VMResult(rc is not None, rc, round(time.monotonic() - start, 1), seen, console, log)
