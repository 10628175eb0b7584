"""Disk copy: overlay → output file, sparse, parallel across disks, with progress and a flush.

`qemu-img convert` reads the qcow2 overlay and its read-only backing in one pass, skips
unallocated and zero ranges (after the appliance's fstrim, free space reads as zero clusters),
writes a sparse raw or qcow2 file, and flushes it on close.  Disks are copied in parallel (two
at a time) and progress is parsed from qemu-img's ``(12.34/100%)`` output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import process
from ..errors import ProcessError, V2VError

PROGRESS_RE = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True)
class CopyJob:
    index: int
    src: str
    src_format: str
    dst: str
    dst_format: str
    preallocated: bool = False
    rate_limit: int | None = None  # bytes per second (--bandwidth)


def parse_rate(text: str) -> int:
    """'50M' → 52428800; plain numbers are bytes per second."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text.strip())
    if not m:
        raise V2VError(f"--bandwidth {text}: expected a number of bytes/s, e.g. 50M")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def convert_argv(job: CopyJob) -> list[str]:
    argv = ["qemu-img", "convert", "-p", "-W", "-f", job.src_format, "-O", job.dst_format]
    opts = []
    if job.preallocated:
        opts.append("preallocation=" + ("falloc" if job.dst_format == "raw" else "metadata"))
    if job.dst_format == "qcow2":
        opts.append("compat=1.1")
    if opts:
        argv += ["-o", ",".join(opts)]
    if job.rate_limit:
        argv += ["-r", str(job.rate_limit)]
    return argv + [job.src, job.dst]


def copy_one(job: CopyJob, progress: Callable[[int, float], None]) -> None:
    argv = convert_argv(job)
    child = process.spawn(argv)
    assert child.proc.stdout is not None and child.proc.stderr is not None
    buf = ""
    while True:
        chunk = child.proc.stdout.read(64)
        if not chunk:
            break
        buf += chunk
        for m in PROGRESS_RE.finditer(buf):
            progress(job.index, float(m.group(1)) / 100.0)
        buf = buf[-32:]
    err = child.proc.stderr.read()
    rc = child.wait()
    if rc != 0:
        if "No space left on device" in err:
            raise V2VError(f"output disk full: no space left on the device holding {job.dst}")
        raise ProcessError(argv, rc, "", err)
    progress(job.index, 1.0)


def copy_disks(jobs: list[CopyJob], progress: Callable[[int, float], None],
               parallel: int = 2) -> None:
    if len(jobs) <= 1 or parallel <= 1:
        for j in jobs:
            copy_one(j, progress)
        return
    with ThreadPoolExecutor(max_workers=parallel) as ex:
        futures = [ex.submit(copy_one, j, progress) for j in jobs]
        for f in futures:
            f.result()


def allocated_bytes(path: str) -> int:
    """Bytes really allocated on the host for a file (sparse-aware)."""
    return os.stat(path).st_blocks * 512


def measure_required(overlay: str) -> int:
    """Bytes of data the copy will write (after trimming), as qemu-img measures it.

    Measured as qcow2 even for raw output: for raw, qemu-img reports the virtual size, while a
    sparse raw copy needs about the allocated data, which the qcow2 figure tracks.
    """
    import json

    res = process.run(["qemu-img", "measure", "--output=json", "-f", "qcow2", "-O", "qcow2",
                       overlay], timeout=300)
    return int(json.loads(res.out)["required"])
