"""Disk copy: each disk's overlay → its destination, sparse, two at a time, with progress.

The copier knows nothing about files: a destination hands it a `CopyTarget` (a path or URI that
qemu-img opens — a staged file, ``nbd://…``, a ``json:`` block spec — its format, and whether
qemu-img creates the image or writes into an existing one with ``-n``).  `qemu-img convert`
reads the qcow2 overlay and its read-only backing in one pass, skips unallocated and zero ranges
(after the appliance's fstrim, free space reads as zero clusters), and flushes on close.
Progress is parsed from qemu-img's ``(12.34/100%)`` output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import process
from ..errors import InternalError, ProcessError, V2VError
from .outputs.base import CopyTarget
from .types import Disk

PROGRESS_RE = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")
Progress = Callable[[int, float], None]


@dataclass(frozen=True)
class CopyOptions:
    preallocated: bool = False       # -oa preallocated (only where qemu-img creates the image)
    rate_limit: int | None = None    # bytes per second (--bandwidth)
    compressed: bool = False         # -oo compressed: qcow2 clusters compressed (qemu-img -c)


def convert_argv(overlay: str, dst: CopyTarget, opts: CopyOptions = CopyOptions()) -> list[str]:
    argv = ["qemu-img", "convert", "-p", "-W", "-f", "qcow2", "-O", dst.format]
    if dst.create:
        create_opts = []
        if opts.preallocated:
            create_opts.append("preallocation="
                               + ("falloc" if dst.format == "raw" else "metadata"))
        if dst.format == "qcow2":
            create_opts.append("compat=1.1")
        if create_opts:
            argv += ["-o", ",".join(create_opts)]
    else:
        argv.append("-n")  # the destination exists (an NBD export, a volume): write into it
    if opts.rate_limit:
        argv += ["-r", str(opts.rate_limit)]
    if opts.compressed:
        if dst.format != "qcow2":
            raise InternalError(f"compressed copy into a {dst.format} image")
        argv.append("-c")
    return argv + [overlay, dst.uri]


def copy_disk(disk: Disk, progress: Progress, opts: CopyOptions = CopyOptions()) -> None:
    """Copy one disk's overlay to its destination (raises V2VError on failure)."""
    if disk.destination is None or not disk.overlay:
        raise InternalError(f"disk {disk.index} has no overlay or destination to copy")
    dst = disk.destination.copy_target(disk.source.size or 0)
    argv = convert_argv(disk.overlay, dst, opts)
    child = process.spawn(argv)
    assert child.proc.stdout is not None and child.proc.stderr is not None
    buf = ""
    while True:
        chunk = child.proc.stdout.read(64)
        if not chunk:
            break
        buf += chunk
        for m in PROGRESS_RE.finditer(buf):
            progress(disk.index, float(m.group(1)) / 100.0)
        buf = buf[-32:]
    err = child.proc.stderr.read()
    rc = child.wait()
    if rc != 0:
        if "No space left on device" in err:
            raise V2VError(f"output disk full: no space left for {disk.destination.location}")
        raise ProcessError(argv, rc, "", err)
    progress(disk.index, 1.0)


def copy_disks(disks: Sequence[Disk], progress: Progress, opts: CopyOptions = CopyOptions(),
               parallel: int = 2) -> None:
    if len(disks) <= 1 or parallel <= 1:
        for d in disks:
            copy_disk(d, progress, opts)
        return
    with ThreadPoolExecutor(max_workers=parallel) as ex:
        futures = [ex.submit(copy_disk, d, progress, opts) for d in disks]
        for f in futures:
            f.result()


def measure_required(overlay: str) -> int:
    """Bytes of data the copy will write (after trimming), as qemu-img measures it.

    Measured as qcow2 even for raw output: for raw, qemu-img reports the virtual size, while a
    sparse raw copy needs about the allocated data, which the qcow2 figure tracks.
    """
    res = process.run(["qemu-img", "measure", "--output=json", "-f", "qcow2", "-O", "qcow2",
                       overlay], timeout=300)
    return int(json.loads(res.out)["required"])
