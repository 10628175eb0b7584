"""Load: one conversion server (our v2v over the loopback sshd), three p2v clients at once, each
with its own "physical" disk (a reflink/sparse copy of debian12-physical), plus a fourth client
that asks for a guest name already being converted.

All three finish; the output directory holds exactly three guests (distinct XML names, distinct
disk files); the fourth is refused at once with one line and does not touch the first's files.
Bootability: the first guest boots to a login prompt with its network up; the other two are
checked in ONE read-only libguestfs launch (same root filesystem found, and the files the
conversion rewrites — fstab, grub.cfg — identical, the same rebuilt initramfs present to the booted
guest's).  Three boots would cost ~3 × 45-90 s on this 2-core TCG machine on top of three
concurrent conversions; one boot plus one appliance launch keeps the test within budget while
still proving each disk carries the same, booted conversion.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import guestfs
import pytest
from lxml import etree
from p2v_real import P2V, conversion_server, listing, only_error_line, wait_until

from pyv2v_harness import bootcheck, demo

pytestmark = [pytest.mark.slow]

NAMES = ("load1", "load2", "load3")


@dataclass
class Load:
    out: Path
    runs: dict[str, P2V]
    rcs: dict[str, int]
    dup: P2V
    dup_rc: int
    seconds: float


@pytest.fixture(scope="module")
def load(debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    tmp = tmp_path_factory.mktemp("p2v-load")
    disks = []
    for n in NAMES:
        disk = tmp / f"{n}.img"
        subprocess.run(["cp", "--reflink=auto", "--sparse=always", str(debian12_physical),
                        str(disk)], check=True)
        disks.append(disk)
    out = tmp / "out"
    out.mkdir()
    srv, _ = conversion_server(tmp)
    runs: dict[str, P2V] = {}
    try:
        start = time.monotonic()
        for n, disk in zip(NAMES, disks, strict=True):
            runs[n] = P2V.start(srv, disk, out, n)
        first = runs[NAMES[0]]
        # The first guest's output is set up (its name claimed): a client asking for the same
        # name now must be refused, not overwrite it.
        wait_until(lambda: first.saw("Opening the source") or first.proc.poll() is not None,
                   600, "the first conversion to set up its output")
        dup = P2V.start(srv, disks[1], out, NAMES[0])
        dup_rc = dup.finish(600)
        rcs = {n: r.finish(1800) for n, r in runs.items()}
        took = time.monotonic() - start
        print(f"\nthree p2v → v2v conversions at once: {took:.0f} s; rcs {rcs}")
        for n, r in runs.items():
            print(f"--- {n}\n" + "\n".join(r.lines[-8:]))
        yield Load(out, runs, rcs, dup, dup_rc, took)
    finally:
        for r in runs.values():
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
        srv.stop()


def test_three_clients_finish_with_distinct_outputs(load: Load) -> None:
    for n, rc in load.rcs.items():
        assert rc == 0, f"{n}: {load.runs[n].out[-3000:]}"
        assert load.runs[n].saw("Conversion finished successfully.")
    assert listing(load.out) == sorted([f"{n}-sda" for n in NAMES] + [f"{n}.xml" for n in NAMES])
    names = [etree.parse(str(load.out / f"{n}.xml")).getroot().findtext("name") for n in NAMES]
    assert names == list(NAMES)
    sources = {etree.parse(str(load.out / f"{n}.xml")).getroot()
               .xpath("string(devices/disk/source/@file)") for n in NAMES}
    assert sources == {str(load.out / f"{n}-sda") for n in NAMES}
    inodes = {(load.out / f"{n}-sda").stat().st_ino for n in NAMES}
    assert len(inodes) == 3


def test_same_guest_name_at_the_same_time_is_refused(load: Load) -> None:
    assert load.dup_rc == 1, load.dup.out
    line = only_error_line(load.dup.out, "p2v")
    assert "virt-v2v failed" in line, line
    assert "guest load1 is being converted into" in load.dup.out, load.dup.out
    assert not load.dup.saw("Pulling source disk"), load.dup.out  # refused before any work
    assert load.rcs[NAMES[0]] == 0  # the first is unharmed (its files: the test above)


def _fingerprint(g: guestfs.GuestFS, root: str) -> dict[str, str]:
    mps = g.inspect_get_mountpoints(root)  # {mountpoint: device}
    try:
        for mp in sorted(mps, key=len):
            g.mount_ro(mps[mp], mp)
        files = ["/etc/fstab", "/boot/grub/grub.cfg"]
        out = {f: hashlib.sha256(g.read_file(f)).hexdigest() for f in files}
        initrds = sorted(f for f in g.ls("/boot") if f.startswith("initrd.img"))
        out["initrd"] = initrds[-1]  # rebuilt by the conversion (its bytes carry timestamps)
        out["distro"] = g.inspect_get_distro(root)
        return out
    finally:
        g.umount_all()


@pytest.mark.boot
def test_outputs_bootable(load: Load, tmp_path: Path) -> None:
    assert all(rc == 0 for rc in load.rcs.values()), load.rcs
    disk, xml = load.out / "load1-sda", load.out / "load1.xml"
    res = bootcheck.boot(disk, bus="virtio-blk", nic_model="virtio-net-pci",
                         mac=demo.first_mac(xml), timeout=600,
                         console_log=tmp_path / "console.log")
    assert res.outcome == "login", f"see {res.console_log}"
    assert res.net_up, res.markers
    g = guestfs.GuestFS(python_return_dict=True)
    for n in NAMES:
        g.add_drive_opts(str(load.out / f"{n}-sda"), format="raw", readonly=True)
    g.launch()
    try:
        roots = sorted(g.inspect_os())
        assert [r[:8] for r in roots] == ["/dev/sda", "/dev/sdb", "/dev/sdc"], roots
        prints = [_fingerprint(g, r) for r in roots]
    finally:
        g.close()
    assert prints[0]["distro"] == "debian", prints[0]
    assert prints[1] == prints[0] and prints[2] == prints[0], prints
