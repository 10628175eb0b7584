"""Copy-on-write overlays: the source is only ever a read-only backing file.

Every write the conversion makes (and the appliance's own reads' side effects) lands in a qcow2
overlay in a private temporary directory; qemu opens backing files read-only, so the source disk,
whether a local file or an NBD export, is never written.  The directory is removed on exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from .. import process
from ..errors import V2VError
from .types import SourceDisk


class Overlays:
    """One qcow2 overlay per source disk, in a temp dir removed by `close` or cleanup."""

    def __init__(self, disks: tuple[SourceDisk, ...], tmpdir: str | None = None) -> None:
        base = tmpdir or os.environ.get("PYV2V_TMPDIR") or "/var/tmp"
        try:
            self.dir = tempfile.mkdtemp(prefix="pyv2v-", dir=base)
        except OSError as e:
            raise V2VError(f"cannot create a temporary directory in {base}: {e.strerror}") from e
        self._hook = process.on_cleanup(self.close)
        self.paths: list[str] = []
        for d in disks:
            path = os.path.join(self.dir, f"overlay{d.index}.qcow2")
            fmt = d.format or "raw"
            argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", d.location]
            if d.size:
                argv.append(path)
                argv.append(str(d.size))
            else:
                argv.append(path)
            res = process.run(argv, check=False, timeout=120)
            if res.rc != 0:
                last = (res.err.strip().splitlines() or ["unknown error"])[-1]
                raise V2VError(f"cannot open source disk {d.location}: {last}")
            self.paths.append(path)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        process.cancel_cleanup(self._hook)
