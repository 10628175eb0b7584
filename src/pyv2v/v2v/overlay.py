"""Copy-on-write overlays: the source is only ever a read-only backing file.

Every write the conversion makes lands in a qcow2 overlay in a private temporary directory; qemu
opens backing files read-only, so the source disk, whether a local file or an NBD export, is never
written.  A remote (NBD) source is first pulled into a local sparse file in one sequential
`nbdcopy` pass (zero blocks become holes): the appliance then works against local storage instead
of paying a network round trip per read, which is where the reference p2v path loses most of its
time.  The directory is removed on exit.

`Overlays(source_disks).disks` are the pipeline's per-disk records (`types.Disk`), each with its
overlay and the source's virtual size filled in.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace

from .. import process
from ..errors import V2VError
from .types import Disk, SourceDisk


class Overlays:
    """One qcow2 overlay per source disk, in a temp dir removed by `close` or cleanup."""

    disks: tuple[Disk, ...]

    def __init__(self, disks: tuple[SourceDisk, ...], tmpdir: str | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        base = tmpdir or os.environ.get("PYV2V_TMPDIR") or "/var/tmp"
        try:
            self.dir = tempfile.mkdtemp(prefix="pyv2v-", dir=base)
        except OSError as e:
            raise V2VError(f"cannot create a temporary directory in {base}: {e.strerror}") from e
        self._hook = process.on_cleanup(self.close)
        records: list[Disk] = []
        self.prefetched_bytes = 0
        for d in disks:
            path = os.path.join(self.dir, f"overlay{d.index}.qcow2")
            fmt = d.format or "raw"
            backing = d.location
            # json: is a local byte range (a disk inside an OVA's tar): qemu reads it in place
            if not os.path.isabs(backing) and not backing.startswith("json:"):
                if notify:
                    notify(f"Pulling source disk {d.index + 1}/{len(disks)} from {backing}")
                backing = self.prefetch(d)
            argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", backing]
            if d.size:
                argv.append(path)
                argv.append(str(d.size))
            else:
                argv.append(path)
            res = process.run(argv, check=False, timeout=120)
            if res.rc != 0:
                last = (res.err.strip().splitlines() or ["unknown error"])[-1]
                raise V2VError(f"cannot open source disk {d.location}: {last}")
            records.append(Disk(replace(d, size=d.size or virtual_size(path)), overlay=path))
        self.disks = tuple(records)

    def prefetch(self, d: SourceDisk) -> str:
        """Copy a remote source into a local sparse file (read-only on the source side)."""
        local = os.path.join(self.dir, f"source{d.index}.{d.format or 'raw'}")
        if (d.format or "raw") == "raw":
            argv = ["nbdcopy", "--flush", d.location, local]
        else:
            argv = ["qemu-img", "convert", "-f", d.format or "raw", "-O", d.format or "raw",
                    d.location, local]
        res = process.run(argv, check=False)
        if res.rc != 0:
            last = (res.err.strip().splitlines() or ["unknown error"])[-1]
            raise V2VError(f"cannot read source disk {d.location}: {last}")
        self.prefetched_bytes += os.stat(local).st_blocks * 512
        return local

    @property
    def paths(self) -> list[str]:
        return [d.overlay for d in self.disks]

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        process.cancel_cleanup(self._hook)


def virtual_size(image: str) -> int:
    res = process.run(["qemu-img", "info", "--output=json", image], timeout=60)
    return int(json.loads(res.out)["virtual-size"])
