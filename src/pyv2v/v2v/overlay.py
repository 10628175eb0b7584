"""Copy-on-write overlays: the source is only ever a read-only backing file.

Every write the conversion makes lands in a qcow2 overlay in a private temporary directory; qemu
opens backing files read-only, so the source disk, whether a local file or an NBD export, is never
written.  A remote (NBD) source is first pulled into a local sparse file in one sequential
`nbdcopy` pass (zero blocks become holes): the appliance then works against local storage instead
of paying a network round trip per read, which is where the reference p2v path loses most of its
time.  Raw NBD sources (p2v disks) move only their used ranges (usedmap.py), resumably and
hashed, at the --bandwidth rate (`rate`), and are verified with the client when it supports it
(transfer.py).  The directory is
removed on exit.

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
from . import transfer
from .ratelimit import RateLimit
from .types import Disk, SourceDisk
from .usedmap import Ranges, used_ranges


class Overlays:
    """One qcow2 overlay per source disk, in a temp dir removed by `close` or cleanup."""

    disks: tuple[Disk, ...]

    def __init__(self, disks: tuple[SourceDisk, ...], tmpdir: str | None = None,
                 notify: Callable[[str], None] | None = None,
                 rate: RateLimit | None = None) -> None:
        base = tmpdir or os.environ.get("PYV2V_TMPDIR") or "/var/tmp"
        try:
            self.dir = tempfile.mkdtemp(prefix="pyv2v-", dir=base)
        except OSError as e:
            raise V2VError(f"cannot create a temporary directory in {base}: {e.strerror}") from e
        self._hook = process.on_cleanup(self.close)
        records: list[Disk] = []
        self.prefetched_bytes = 0
        self.verified_bytes = 0
        self._notify = notify or (lambda text: None)
        self._rate = rate
        remote_raw = [d for d in disks if _remote(d.location) and (d.format or "raw") == "raw"]
        self._ranges = dict(zip((d.index for d in remote_raw), self._map(remote_raw),
                                strict=True))
        for d in disks:
            path = os.path.join(self.dir, f"overlay{d.index}.qcow2")
            fmt = d.format or "raw"
            backing = d.location
            # json: is a local byte range (a disk inside an OVA's tar): qemu reads it in place
            if _remote(backing):
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
        if d.index in self._ranges:
            name = d.target_dev or f"disk {d.index + 1}"
            pulled = transfer.pull(d.location, local, remote_size(d.location),
                                   self._ranges[d.index], self._notify, self._rate)
            self.prefetched_bytes += pulled.moved
            sock = transfer.socket_of(d.location)
            if sock and transfer.client_verifies(sock):
                self.verified_bytes += transfer.verify(sock, name, pulled, self._notify)
            return local
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

    def _map(self, disks: list[SourceDisk]) -> list[Ranges]:
        if not disks:
            return []
        self._notify("Mapping the used blocks of the remote source disks")
        return used_ranges([d.location for d in disks],
                           [remote_size(d.location) for d in disks], self.dir)

    @property
    def paths(self) -> list[str]:
        return [d.overlay for d in self.disks]

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        process.cancel_cleanup(self._hook)


def _remote(location: str) -> bool:
    return not os.path.isabs(location) and not location.startswith("json:")


def remote_size(uri: str) -> int:
    return virtual_size(uri)


def virtual_size(image: str) -> int:
    res = process.run(["qemu-img", "info", "--output=json", image], timeout=60)
    return int(json.loads(res.out)["virtual-size"])
