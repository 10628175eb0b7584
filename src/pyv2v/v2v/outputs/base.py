"""The output contract, and staging so nothing half-written looks finished.

An `Output` checks its options before any expensive work (`precheck`), names the final disk files
(`disk_paths`), and writes metadata (`finalize`).  The pipeline writes every file through a
`Staging` object: data goes to a hidden temporary name next to the final one and is renamed into
place only by `commit()` after the whole conversion succeeded; `abort()` (also run by the cleanup
registry on error, Ctrl-C or SIGTERM) removes the temporaries.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ... import process
from ...errors import V2VError
from ..types import GuestCaps, Source, TargetMeta

BUS_PREFIX = {"virtio-blk": "vd", "virtio-scsi": "sd", "ide": "hd", "sata": "sd"}


def drive_name(index: int, prefix: str = "sd") -> str:
    """0 → sda, 25 → sdz, 26 → sdaa (libvirt/Linux naming)."""
    letters = ""
    i = index + 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        letters = chr(ord("a") + r) + letters
    return prefix + letters


@dataclass(frozen=True)
class OutputOptions:
    storage: str | None = None        # -os
    conn: str | None = None           # -oc
    format: str | None = None         # -of
    allocation: str = "sparse"        # -oa
    options: dict[str, str] = field(default_factory=dict)  # -oo


class Staging:
    """Temporary names for output files, renamed into place only on commit."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []
        self._hook = process.on_cleanup(self.abort)

    def path(self, final: str) -> str:
        d, base = os.path.split(final)
        tmp = os.path.join(d, f".{base}.pyv2v-partial")
        self.pending.append((tmp, final))
        return tmp

    def write_text(self, final: str, text: str, mode: int = 0o644) -> None:
        tmp = self.path(final)
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.chmod(tmp, mode)
        except OSError as e:
            raise V2VError(f"cannot write {final}: {e.strerror}") from e

    def commit(self) -> None:
        for tmp, final in self.pending:
            if os.path.exists(tmp):
                os.replace(tmp, final)
        self.pending.clear()
        process.cancel_cleanup(self._hook)

    def abort(self) -> None:
        for tmp, _ in self.pending:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self.pending.clear()
        process.cancel_cleanup(self._hook)


def check_writable_dir(path: str | None, flag: str = "-os") -> str:
    if not path:
        raise V2VError(f"this output needs {flag} DIRECTORY")
    if not os.path.isdir(path):
        raise V2VError(f"{flag} {path}: directory does not exist")
    if not os.access(path, os.W_OK | os.X_OK):
        raise V2VError(f"{flag} {path}: directory is not writable")
    return os.path.abspath(path)


class Output(ABC):
    name: str = ""
    description: str = ""
    formats: tuple[str, ...] = ("raw", "qcow2")
    accepts_conn = False  # uses -oc URI (e.g. a future -o libvirt); otherwise cli refuses -oc
    writes_disks = True

    def __init__(self, opts: OutputOptions) -> None:
        self.opts = opts
        self.format = opts.format or "raw"
        self.known_options: tuple[str, ...] = ()

    def precheck(self) -> None:
        """Validate options and the destination before the conversion starts."""
        if self.format not in self.formats:
            raise V2VError(f"-o {self.name}: -of {self.format} is not supported "
                           f"(use {' or '.join(self.formats)})")
        unknown = sorted(set(self.opts.options) - set(self.known_options))
        if unknown:
            raise V2VError(f"-o {self.name}: unknown -oo option {unknown[0]}")

    @abstractmethod
    def disk_paths(self, name: str, source: Source, caps: GuestCaps) -> list[str]:
        """Final paths of the output disks, one per source disk."""

    @abstractmethod
    def finalize(self, meta: TargetMeta, staging: Staging) -> list[str]:
        """Write metadata through `staging`; return the final paths written."""

    def after_commit(self, meta: TargetMeta) -> None:
        """Runs once the output is in place (e.g. -oo qemu-boot); nothing by default."""
        return None
