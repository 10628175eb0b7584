"""The used-block map (v2v/usedmap.py) leaves an LVM volume group's free extents behind, for
real: a 192 MiB disk full of old random data (as in service) gets an MBR partition, a PV, a VG
and one 48 MiB ext4 LV holding a 1 MiB file (built once with libguestfs into the fixture
cache; the test maps a private copy); `used_ranges` then maps
it through a read-only nbdkit unix socket, as v2v maps a p2v disk.  The ~140 MiB of free
extents must not be in the map; the source is not written.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pyv2v import nbd
from pyv2v.v2v import usedmap
from pyv2v_harness.fixtures.builder import cache_dir

pytestmark = [pytest.mark.slow]

MiB = 1 << 20
SIZE = 192 * MiB
CACHED = "p2v-lvm-free-v1.raw"  # bump when build() changes


def build(img: Path) -> None:
    import guestfs

    with open(img, "wb") as f:
        for _ in range(SIZE // (16 * MiB)):
            f.write(os.urandom(16 * MiB))
    g = guestfs.GuestFS(python_return_dict=True)
    g.add_drive_opts(str(img), format="raw")
    g.launch()
    g.part_disk("/dev/sda", "mbr")
    g.pvcreate("/dev/sda1")
    g.vgcreate("vg0", ["/dev/sda1"])
    g.lvcreate("root", "vg0", 48)
    g.mkfs("ext4", "/dev/vg0/root")
    g.mount("/dev/vg0/root", "/")
    g.write("/data", os.urandom(MiB))
    g.umount_all()
    g.shutdown()
    g.close()


def cached_image(tmp_path: Path) -> Path:
    """A private copy of the built disk; built once into the fixture cache (under a lock)."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{CACHED}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / CACHED).exists():
            part = cache / f"{CACHED}.part"
            build(part)
            part.rename(cache / CACHED)
    img = tmp_path / "disk.raw"
    shutil.copyfile(cache / CACHED, img)
    return img


def test_lvm_free_extents_are_not_pulled(tmp_path: Path) -> None:
    img = cached_image(tmp_path)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    sock = tmp_path / "sda.sock"
    proc = subprocess.Popen(["nbdkit", "-r", "-f", "-U", str(sock), "file", f"file={img}"],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        (ranges,) = usedmap.used_ranges([nbd.nbd_unix_uri(str(sock))], [SIZE], str(tmp_path))
    finally:
        proc.kill()
        proc.wait()
    moved = usedmap.total(ranges)
    print(f"\nmap: {len(ranges)} ranges, {moved / MiB:.1f} MiB of {SIZE / MiB:.0f} MiB")
    # the LV (48 MiB, mostly trimmed: ext4 metadata + 1 MiB of data) plus LVM's own head
    assert moved < 24 * MiB, moved
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before
