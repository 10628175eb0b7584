"""Load: one conversion server (our v2v over the loopback sshd), three p2v clients at once, each
with its own "physical" disk, plus a fourth client that asks for a guest name already being
converted.  load1's disk is a reflink/sparse copy of debian12-physical; load2's and load3's are
copies of the phony Windows Server 2022 guest (guest_fixtures.win2022_phony): three real
conversions in one server at the same time, but two of them without the Debian initramfs
rebuild, which would put ~2 × 2 min of CPU on this 2-core TCG machine (the subject here is the
concurrency, not the Linux conversion, which other tests boot).

All three finish; the output directory holds exactly three guests (distinct XML names, distinct
disk files); the fourth is refused at once with one line and does not touch the first's files.
Results: the Debian guest boots to a login prompt with its network up; the two Windows guests
are checked in ONE read-only libguestfs launch (each inspects as Windows Server 2022 with
viostor.sys installed and the same first-boot scripts queued: the same conversion twice).
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
from guest_fixtures import WindowsGuest
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
def load(debian12_physical: Path, win2022_phony: WindowsGuest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    tmp = tmp_path_factory.mktemp("p2v-load")
    disks = []
    for n, src in zip(NAMES, (debian12_physical, win2022_phony.image, win2022_phony.image),
                      strict=True):
        disk = tmp / f"{n}.img"
        subprocess.run(["cp", "--reflink=auto", "--sparse=always", str(src), str(disk)],
                       check=True)
        disks.append(disk)
    out = tmp / "out"
    out.mkdir()
    srv, _ = conversion_server(tmp, env=win2022_phony.env)
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
        try:
            rcs = {n: r.finish(900) for n, r in runs.items()}
        except subprocess.TimeoutExpired:
            pytest.fail("a p2v client did not finish within 900 s:\n" + "\n".join(
                f"--- {n} (rc {r.proc.poll()})\n" + "\n".join(r.lines[-25:])
                for n, r in runs.items()))
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


FB = "/Program Files/pyv2v/Firstboot"


def _windows_fingerprint(g: guestfs.GuestFS, root: str) -> dict[str, object]:
    g.mount_ro(root, "/")
    try:
        viostor = "/Windows/System32/drivers/viostor.sys"
        return {"product": g.inspect_get_product_name(root),
                "viostor": hashlib.sha256(g.read_file(viostor)).hexdigest()
                if g.is_file(viostor) else None,
                "scripts": sorted(g.ls(f"{FB}/scripts")) if g.is_dir(f"{FB}/scripts") else []}
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
    for n in NAMES[1:]:
        g.add_drive_opts(str(load.out / f"{n}-sda"), format="raw", readonly=True)
    g.launch()
    try:
        roots = sorted(g.inspect_os())
        assert [r[:8] for r in roots] == ["/dev/sda", "/dev/sdb"], roots
        assert [g.inspect_get_type(r) for r in roots] == ["windows", "windows"]
        prints = [_windows_fingerprint(g, r) for r in roots]
    finally:
        g.close()
    assert prints[0]["product"] == "Windows Server 2022 Standard", prints[0]
    assert prints[0]["viostor"] and prints[0]["scripts"], prints[0]
    assert prints[1] == prints[0], prints
