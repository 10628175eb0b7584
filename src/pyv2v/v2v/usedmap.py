"""Which byte ranges of remote source disks hold data the guest needs (before pulling them).

A disk in service has old data in its free space: every block is non-zero, so pulling every
non-zero block moves the whole disk.  `used_ranges(uris, sizes, tmpdir)` opens a throwaway
qcow2 overlay (4 KiB clusters: filesystem block granularity) on each remote (read-only) NBD
source, launches one libguestfs appliance on them, mounts every filesystem it finds in turn
and runs fstrim (the discards land in the overlay as zero clusters; the source is never
written).  What is needed is what the source holds as data (its NBD server's block status,
asked over the whole disk at once: a handful of round trips) minus what the overlay zeroed
(`qemu-img map` of the overlay alone, its backing not opened: mapping through the remote
backing asked it cluster run by cluster run, ~3,500 round trips for a 2 GiB disk, 70 s over a
20 ms link).  The result is further cut to the partitions, keeping the area before the first
one (partition table, boot loader) and the last MiB of a GPT disk (its backup header):
unpartitioned space and the body of swap partitions are never moved.  The free extents of
each LVM volume group are discarded too (a temporary LV created over them in the overlay,
then blkdiscard).  Filesystems the appliance cannot mount are kept whole (safe default); so
is swap on LVM (its signature must survive, and blkdiscard cannot spare it).  The overlays go
away with the temporary directory.

Ranges are lists of `(offset, length)`, sorted, non-overlapping (`Ranges`).
"""

from __future__ import annotations

import contextlib
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
BLOCK_STATUS_MAX = (1 << 31) - (1 << 20)  # one NBD block status request (32-bit count)
NBD_STATE_ZERO = 2  # base:allocation: the extent reads as zeros


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


def subtract(a: Ranges, b: Ranges) -> Ranges:
    """The parts of `a` not covered by `b` (each sorted, non-overlapping)."""
    out: Ranges = []
    j = 0
    for off, length in a:
        pos, end = off, off + length
        while j < len(b) and b[j][0] + b[j][1] <= pos:
            j += 1
        k = j
        while pos < end and k < len(b) and b[k][0] < end:
            if b[k][0] > pos:
                out.append((pos, b[k][0] - pos))
            pos = max(pos, b[k][0] + b[k][1])
            k += 1
        if pos < end:
            out.append((pos, end - pos))
    return coalesce(out)


def zeroed_ranges(map_json: str) -> Ranges:
    """What an overlay's own layer reads as zeros (`qemu-img map --output=json` of the overlay
    opened without its backing): the clusters fstrim/blkdiscard zeroed."""
    return coalesce([(int(e["start"]), int(e["length"])) for e in json.loads(map_json)
                     if e.get("present") and e.get("zero") and e.get("depth", 0) == 0])


def data_ranges(uri: str, size: int) -> Ranges:
    """What the NBD source holds as data: its base:allocation block status (holes and zero
    extents left out), asked for the rest of the disk at once; the whole disk when the server
    has no block status."""
    import nbd  # Debian python3-libnbd (system site-packages)

    h = nbd.NBD()
    h.add_meta_context("base:allocation")
    try:
        h.connect_uri(uri)
        if not h.can_meta_context("base:allocation"):
            return [(0, size)]
        out: Ranges = []
        got: list[tuple[int, list[int]]] = []

        def extent(ctx: str, start: int, entries: list[int], err: object) -> int:
            if ctx == "base:allocation":
                got.append((start, list(entries)))
            return 0

        off = 0
        while off < size:
            got.clear()
            h.block_status(min(size - off, BLOCK_STATUS_MAX), off, extent)
            pos = off
            for start, entries in got:
                pos = start
                for i in range(0, len(entries) - 1, 2):
                    length, flags = entries[i], entries[i + 1]
                    if not flags & NBD_STATE_ZERO:
                        out.append((pos, min(length, size - pos)))
                    pos += length
            if pos <= off:
                raise V2VError(f"source disk {uri}: block status made no progress at {off}")
            off = pos
        return coalesce(out)
    except nbd.Error as e:
        raise V2VError(f"cannot read the block status of source disk {uri}: {e}") from None
    finally:
        with contextlib.suppress(nbd.Error):
            h.shutdown()


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
        for uri, ov, size, (parts, gpt) in zip(uris, overlays, sizes, layouts, strict=True):
            alone = json.dumps({"driver": "qcow2", "backing": None,
                                "file": {"driver": "file", "filename": ov}})
            res = process.run(["qemu-img", "map", "--output=json", f"json:{alone}"],
                              timeout=600)
            needed = subtract(data_ranges(uri, size), zeroed_ranges(res.out))
            out.append(intersect(needed, keep_mask(size, parts, gpt)))
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
