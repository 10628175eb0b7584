"""`--verify-boot`: boot the converted guest once, on a throwaway overlay, and say how far it got.

After the output is committed, the written disks boot under qemu with the accelerator that works
on this host (accel.py), ``-snapshot`` so nothing is written to them, the serial console going to
a private log file and each planned NIC on its own *restricted* user-mode network (the guest
reaches nothing outside) whose traffic qemu dumps to a pcap file.  What counts:

* the console (pyv2v.bootcheck): a login prompt, or the failures — an initramfs shell, a panic;
* the network, without needing a console in the guest: a frame from a NIC's MAC carrying an IPv4
  source address (ARP or IPv4) means the guest configured that NIC, statically or by DHCP; to
  make a quiet guest answer, a TCP connection is opened now and then through a host forward to
  10.0.2.15 (user networking's DHCP address), so slirp ARPs for or sends to it.  A DHCP request
  from 0.0.0.0 only means it asked; IPv6 link traffic only that the NIC was brought up.

Verified = no failure on the console, and a login prompt or a configured NIC — and if the guest
has NICs, at least one up within the grace period after the login prompt.  The result
is one line on stdout, a ``verify-boot`` event in --machine-readable mode, and a V2VError (exit 1)
with the last console lines when it failed.
"""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import accel, log, process
from ..bootcheck import classify, clean, evidence
from ..errors import V2VError
from .outputs.domain_xml import OVMF_CODE, OVMF_VARS
from .types import GuestCaps, TargetDisk

STAGE = "Verifying that the guest boots"  # the stage line (and the fleet's job stage)
NET_GRACE = 90.0          # seconds after a login prompt to wait for a configured NIC
CONSOLE_GRACE = 30.0      # seconds after a configured NIC to wait for a login prompt
# (module constants, read at each check: tests may shorten them)
_ARP, _IPV4, _IPV6 = 0x0806, 0x0800, 0x86DD
LINK_ONLY = "ipv6"        # pseudo-address: the MAC sent IPv6 link traffic


@dataclass
class Verdict:
    ok: bool
    outcome: str          # login | network | initramfs | panic | timeout | qemu-error
    seconds: float
    addresses: dict[str, str] = field(default_factory=dict)   # MAC → IPv4 address, or "ipv6"
    dhcp_only: list[str] = field(default_factory=list)        # MACs that only asked for one
    detail: str = ""
    console_tail: list[str] = field(default_factory=list)

    def line(self) -> str:
        net = ", ".join(f"{m} {a}" if a != LINK_ONLY else f"{m} up (IPv6 link traffic only)"
                        for m, a in self.addresses.items()) or "none configured"
        if self.dhcp_only:
            net += " (asked for DHCP, no address used: " + ", ".join(self.dhcp_only) + ")"
        verdict = "booted" if self.ok else "FAILED"
        extra = f" ({self.detail})" if self.detail else ""
        return (f"Boot verification: {verdict}: {self.outcome}{extra} after "
                f"{self.seconds:.0f} s; network: {net}")


def sources_from_pcap(data: bytes) -> dict[str, set[str]]:
    """{source MAC: IPv4 source addresses it used ("0.0.0.0": a DHCP request; "ipv6": IPv6)}."""
    out: dict[str, set[str]] = {}
    if len(data) < 24:
        return out
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[pos + 8:pos + 12])[0]
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < 14:
            continue
        mac = ":".join(f"{b:02x}" for b in frame[6:12])
        etype = struct.unpack("!H", frame[12:14])[0]
        if etype == _ARP and len(frame) >= 14 + 18:
            spa = frame[14 + 14:14 + 18]
        elif etype == _IPV4 and len(frame) >= 14 + 20:
            spa = frame[14 + 12:14 + 16]
        elif etype == _IPV6:
            out.setdefault(mac, set()).add(LINK_ONLY)
            continue
        else:
            continue
        out.setdefault(mac, set()).add(".".join(str(b) for b in spa))
    return out


def qemu_argv(disks: tuple[TargetDisk, ...], caps: GuestCaps, macs: list[str], work: Path,
              vars_file: Path | None, ports: list[int]) -> list[str]:
    argv = ["qemu-system-x86_64", *accel.qemu_args(), "-machine", caps.machine, "-m", "1024",
            "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-monitor",
            "none", "-serial", f"file:{work / 'console.log'}", "-no-reboot", "-snapshot"]
    if vars_file is not None:
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}"]
    if caps.block_bus == "virtio-scsi":
        argv += ["-device", "virtio-scsi-pci,id=scsi0"]
    for i, d in enumerate(disks):
        argv += ["-drive", f"file={d.path},format={d.format},if=none,id=d{i},cache=unsafe"]
        boot = ",bootindex=0" if i == 0 else ""
        argv += ["-device", f"scsi-hd,drive=d{i},bus=scsi0.0,scsi-id={i}{boot}"
                 if caps.block_bus == "virtio-scsi" else f"virtio-blk-pci,drive=d{i}{boot}"]
    model = "virtio-net-pci" if caps.net_bus == "virtio-net" else "e1000"
    for i, mac in enumerate(macs):
        argv += ["-netdev", f"user,id=n{i},restrict=on,hostfwd=tcp:127.0.0.1:{ports[i]}-:22",
                 "-object", f"filter-dump,id=f{i},netdev=n{i},file={work / f'net{i}.pcap'}",
                 "-device", f"{model},netdev=n{i},mac={mac}"]
    return argv


def _network(work: Path, macs: list[str]) -> tuple[dict[str, str], list[str]]:
    seen: dict[str, set[str]] = {}
    for i in range(len(macs)):
        p = work / f"net{i}.pcap"
        if p.exists():
            for mac, addrs in sources_from_pcap(p.read_bytes()).items():
                seen.setdefault(mac, set()).update(addrs)
    up = {}
    for m in macs:
        v4 = sorted(seen.get(m, set()) - {"0.0.0.0", LINK_ONLY})
        if v4 or LINK_ONLY in seen.get(m, set()):
            up[m] = v4[0] if v4 else LINK_ONLY
    return up, [m for m in macs if "0.0.0.0" in seen.get(m, set()) and m not in up]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poke(ports: tuple[int, ...]) -> None:
    """Open (and drop) a connection through each host forward: slirp then has to reach the
    guest's 10.0.2.15, and a guest that configured it answers from its MAC."""
    for port in ports:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                pass
        except OSError:
            pass


def verify(disks: tuple[TargetDisk, ...], caps: GuestCaps, macs: list[str],
           timeout: float = 600.0, net_grace: float = NET_GRACE) -> Verdict:
    """Boot the written disks (never writing them) and judge the boot; see the module doc."""
    for d in disks:
        if not Path(d.path).is_file():
            raise V2VError(f"--verify-boot: the output wrote no local disk file to boot "
                           f"({d.path}); use -o local or -o qemu")
    macs = [m.lower() for m in macs]
    work = Path(tempfile.mkdtemp(prefix="pyv2v-verify-"))   # 0700, removed afterwards
    try:
        vars_file = None
        if caps.firmware == "uefi":
            vars_file = work / "OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, vars_file)
        (work / "console.log").write_bytes(b"")
        log.message(f"{STAGE} (qemu, {accel.detect().name}, "
                    "on a throwaway overlay)")
        ports = [_free_port() for _ in macs]
        with open(work / "qemu.stderr", "w") as err:
            child = process.spawn(qemu_argv(disks, caps, macs, work, vars_file, ports),
                                  stdout=process.DEVNULL, stderr=err.fileno())
        try:
            return _watch(child, work, macs, timeout, tuple(ports), net_grace)
        finally:
            child.terminate()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _watch(child: process.Child, work: Path, macs: list[str], timeout: float,
           ports: tuple[int, ...] = (), net_grace: float = NET_GRACE) -> Verdict:
    start = time.monotonic()
    login_at = net_at = None
    poked = 0.0
    while True:
        time.sleep(0.5)
        if time.monotonic() - poked >= 3.0:
            _poke(ports)
            poked = time.monotonic()
        exited = child.poll() is not None
        text = (work / "console.log").read_bytes().decode(errors="replace")
        up, dhcp = _network(work, macs)
        now = time.monotonic()
        seconds = now - start
        outcome = classify(text)
        if outcome == "login":
            login_at = login_at or now
        if up:
            net_at = net_at or now
        verdict: Verdict | None = None
        if outcome in ("initramfs", "panic"):
            verdict = Verdict(False, outcome, seconds, up, dhcp, evidence(text, outcome))
        elif login_at and (up or not macs):
            verdict = Verdict(True, "login", seconds, up, dhcp)
        elif login_at and now - login_at >= net_grace:
            verdict = Verdict(False, "login", seconds, up, dhcp,
                              f"no NIC configured within {net_grace:g} s of the login prompt")
        elif net_at and now - net_at >= CONSOLE_GRACE:
            verdict = Verdict(True, "network", seconds, up, dhcp, "no login prompt on ttyS0")
        elif exited:
            err = (work / "qemu.stderr").read_text(errors="replace").strip().splitlines()
            verdict = Verdict(False, "qemu-error", seconds, up, dhcp,
                              err[-1] if err else f"qemu exited with status {child.poll()}")
        elif seconds >= timeout:
            verdict = Verdict(False, "timeout", seconds, up, dhcp,
                              f"no login prompt or network within {timeout:g} s")
        if verdict:
            verdict.console_tail = [ln.rstrip() for ln in clean(text).splitlines()
                                    if ln.strip()][-15:]
            return verdict


def report(v: Verdict) -> None:
    """The result line (stdout), the machine-readable event; a V2VError if it failed."""
    log.event("verify-boot", ok=v.ok, outcome=v.outcome, seconds=round(v.seconds, 1),
              addresses=v.addresses, detail=v.detail, console_tail=v.console_tail)
    log.message(v.line())
    if not v.ok:
        tail = " | ".join(v.console_tail[-5:])
        raise V2VError(f"the converted guest did not boot as expected: {v.outcome}"
                       + (f" ({v.detail})" if v.detail else "")
                       + (f"; last console lines: {tail}" if tail else ""))
