"""Which byte ranges of remote source disks hold data the guest needs (before pulling them).

A disk in service has old data in its free space: every block is non-zero, so pulling every
non-zero block moves the whole disk.  `used_ranges(uris, sizes, tmpdir)` opens a throwaway
qcow2 overlay (4 KiB clusters: filesystem block granularity) on each remote (read-only) NBD
source, launches one libguestfs appliance on them, mounts every filesystem it finds in turn
and runs fstrim (the discards land in the overlay as zero clusters; the source is never
written), then reads the overlay's map (`qemu-img map`): what is not zero is needed.  The
result is further cut to the partitions, keeping the area before the first one (partition
table, boot loader) and the last MiB of a GPT disk (its backup header): unpartitioned space
and the body of swap partitions are never moved.  The free extents of each LVM volume group
are discarded too (a temporary LV created over them in the overlay, then blkdiscard).
Filesystems the appliance cannot mount are kept whole (safe default); so is swap on LVM (its
signature must survive, and blkdiscard cannot spare it).  The overlays go away with the
temporary directory.

Ranges are lists of `(offset, length)`, sorted, non-overlapping (`Ranges`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from .. import log, process
from ..errors import V2VError
from .appliance import Appliance

Ranges = list[tuple[int, int]]
SWAP_HEADER_KEEP = 64 << 10  # a swap partition keeps its signature (UUID, label), not its body
GPT_TAIL_KEEP = 1 << 20
FREE_LV = "pyv2vfree"  # the overlay-only LV over a volume group's free extents


def intersect(a: Ranges, b: Ranges) -> Ranges:
    """The ranges covered by both `a` and `b` (each sorted, non-overlapping)."""
    out: Ranges = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][0] + a[i][1], b[j][0] + b[j][1])
        if start < end:
            out.append((start, end - start))
        if a[i][0] + a[i][1] < b[j][0] + b[j][1]:
            i += 1
        else:
            j += 1
    return coalesce(out)


def coalesce(ranges: Ranges) -> Ranges:
    """Sort and merge touching or overlapping ranges; drop empty ones."""
    out: Ranges = []
    for off, length in sorted(r for r in ranges if r[1] > 0):
        if out and off <= out[-1][0] + out[-1][1]:
            end = max(out[-1][0] + out[-1][1], off + length)
            out[-1] = (out[-1][0], end - out[-1][0])
        else:
            out.append((off, length))
    return out


def total(ranges: Ranges) -> int:
    return sum(n for _, n in ranges)


def nonzero_ranges(map_json: str) -> Ranges:
    """The non-zero extents of `qemu-img map --output=json`."""
    return coalesce([(int(e["start"]), int(e["length"])) for e in json.loads(map_json)
                     if not e.get("zero")])


def keep_mask(size: int, parts: Sequence[tuple[int, int, bool]], gpt: bool) -> Ranges:
    """What may be moved at all: the head before the first partition, each partition (only the
    signature of swap partitions) and a GPT disk's tail.  `parts`: (start, size, is_swap).
    No partitions: the whole disk (a filesystem or PV on the bare disk)."""
    if not parts:
        return [(0, size)]
    keep: Ranges = [(0, min(p[0] for p in parts))]
    for start, length, swap in parts:
        keep.append((start, min(length, SWAP_HEADER_KEEP) if swap else length))
    if gpt:
        keep.append((max(0, size - GPT_TAIL_KEEP), min(size, GPT_TAIL_KEEP)))
    return coalesce(keep)


def _layout(g: Any, dev: str) -> tuple[list[tuple[int, int, bool]], bool]:
    """(partitions as (start, size, is_swap), is_gpt) of appliance device `dev`."""
    try:
        parttype = g.part_get_parttype(dev)
        plist = g.part_list(dev)
    except RuntimeError:
        return [], False  # no partition table
    parts = []
    for p in plist:
        name = f"{dev}{p['part_num']}"
        try:
            swap = g.vfs_type(name) == "swap"
        except RuntimeError:
            swap = False
        parts.append((int(p["part_start"]), int(p["part_size"]), swap))
    return parts, parttype == "gpt"


def _trim_all(g: Any) -> int:
    """Mount each filesystem in turn and fstrim it; return how many were trimmed."""
    done = 0
    for dev, fstype in g.list_filesystems().items():
        if fstype in ("swap", "unknown", "") or fstype.startswith("LVM"):
            continue
        try:
            g.mount(dev, "/")
        except RuntimeError as e:
            log.debug(f"used-block map: cannot mount {dev} ({fstype}): kept whole: {e}")
            continue
        try:
            g.fstrim("/")
            done += 1
        except RuntimeError as e:
            log.debug(f"used-block map: fstrim {dev}: {e}")
        finally:
            g.umount_all()
    return done


def _discard_free_extents(g: Any) -> int:
    """Discard each volume group's free extents (through a temporary LV over all of them, in the
    overlay's LVM metadata only); return how many groups had any."""
    done = 0
    for vg in g.vgs():
        try:
            g.lvcreate_free(FREE_LV, vg, 100)
        except RuntimeError as e:  # a full group: nothing free
            log.debug(f"used-block map: {vg} has no free extents: {e}")
            continue
        try:
            g.blkdiscard(f"/dev/{vg}/{FREE_LV}")
            done += 1
        except RuntimeError as e:
            log.debug(f"used-block map: discarding the free extents of {vg}: {e}")
    return done


def used_ranges(uris: Sequence[str], sizes: Sequence[int], tmpdir: str) -> list[Ranges]:
    """For each remote raw source, the ranges to pull (see the module docstring)."""
    work = tempfile.mkdtemp(prefix="usedmap-", dir=tmpdir)
    try:
        overlays = []
        for i, (uri, size) in enumerate(zip(uris, sizes, strict=True)):
            ov = os.path.join(work, f"map{i}.qcow2")
            res = process.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096",
                               "-F", "raw", "-b", uri, ov, str(size)], check=False, timeout=120)
            if res.rc != 0:
                last = (res.err.strip().splitlines() or ["unknown error"])[-1]
                raise V2VError(f"cannot open source disk {uri}: {last}")
            overlays.append(ov)
        app = Appliance(overlays)
        try:
            layouts = [_layout(app.g, dev) for dev in app.g.list_devices()]
            trimmed = _trim_all(app.g)
            groups = _discard_free_extents(app.g)
        finally:
            app.close()
        log.debug(f"used-block map: {trimmed} filesystems trimmed, free extents of {groups} "
                  "volume groups discarded")
        out = []
        for ov, size, (parts, gpt) in zip(overlays, sizes, layouts, strict=True):
            res = process.run(["qemu-img", "map", "--output=json", "-f", "qcow2", ov],
                              timeout=600)
            out.append(intersect(nonzero_ranges(res.out), keep_mask(size, parts, gpt)))
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
