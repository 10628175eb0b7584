"""The output contract: where each disk goes, and nothing half-written ever looks finished.

An `Output` checks its options (`precheck`, no side effects), then `setup(name, source)` returns a
`Target`: one `Destination` per source disk plus, for outputs that write files, the `Staging`
their metadata goes through.  A destination may be a local file or not (an NBD endpoint, a
storage volume): it hands the copier a `CopyTarget` (a path or URI qemu-img opens, its format,
whether qemu-img creates it) and commits or aborts itself.  `finalize(meta, target)` writes the
metadata; `Target.commit()` publishes everything, disks first, metadata last; `Target.abort()`
(also run by the cleanup registry on error, Ctrl-C or SIGTERM) removes every trace.

Files are staged in a private directory (mkdtemp, 0700) inside the output storage, created with
O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, and linked into place on commit, which never follows
a symlink and never replaces an existing file unless the user asked to overwrite.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ... import process
from ...errors import V2VError
from ..types import Source, SourceDisk, TargetMeta
from .staging import Staging, check_writable_dir, disk_file_name, refuse_existing


@dataclass(frozen=True)
class OutputOptions:
    storage: str | None = None        # -os
    conn: str | None = None           # -oc
    format: str | None = None         # -of
    allocation: str = "sparse"        # -oa
    options: dict[str, str] = field(default_factory=dict)  # -oo
    overwrite: bool = False           # --overwrite: replace an existing guest's files


@dataclass(frozen=True)
class CopyTarget:
    """What the copier writes one disk to."""

    uri: str              # a path or URI qemu-img opens: "/out/.g-x.pyv2v-partial/g-sda", "nbd://…"
    format: str           # "raw" | "qcow2"
    create: bool = True   # qemu-img creates the image; False: it exists already (qemu-img -n)


class Destination(ABC):
    """Where one disk is written.  `location` is what metadata names (a final path, a URI)."""

    def __init__(self, location: str, format: str) -> None:
        self.location = location
        self.format = format

    @abstractmethod
    def copy_target(self, size: int) -> CopyTarget:
        """Where the copier writes a disk of `size` bytes, while the run is not committed."""

    def space_dir(self) -> str | None:
        """A local directory whose free space must hold this disk; None if not a file."""
        return None

    @abstractmethod
    def commit(self) -> None:
        """Make the written disk final (runs only once everything succeeded)."""

    @abstractmethod
    def abort(self) -> None:
        """Remove or invalidate whatever was written (must be safe to call twice)."""


class FileDestination(Destination):
    """A disk file: written under a private staging name, linked to `location` on commit."""

    def __init__(self, staging: Staging, final: str, format: str) -> None:
        super().__init__(final, format)
        self.staging = staging
        self.staged = staging.create(final)

    def copy_target(self, size: int) -> CopyTarget:
        return CopyTarget(self.staged, self.format, create=True)

    def space_dir(self) -> str:
        return os.path.dirname(self.location)

    def commit(self) -> None:
        self.staging.place(self.staged, self.location)

    def abort(self) -> None:
        self.staging.discard(self.staged)


class Target:
    """Everything one conversion writes: the disks' destinations, then metadata files."""

    def __init__(self, disks: tuple[Destination, ...], files: Staging | None = None) -> None:
        self.disks = disks
        self.files = files
        self._hook = process.on_cleanup(self.abort)

    @property
    def dir(self) -> str:
        """The output directory (outputs that write files only)."""
        if self.files is None:
            raise V2VError("this output writes no files")
        return self.files.final_dir

    def commit(self) -> None:
        for d in self.disks:
            d.commit()
        if self.files is not None:
            self.files.commit()
        process.cancel_cleanup(self._hook)

    def abort(self) -> None:
        for d in self.disks:
            try:
                d.abort()
            except (OSError, V2VError):
                pass
        if self.files is not None:
            self.files.abort()
        process.cancel_cleanup(self._hook)


class Output(ABC):
    name: str = ""
    description: str = ""
    formats: tuple[str, ...] = ("raw", "qcow2")
    known_options: tuple[str, ...] = ()
    accepts_conn = False  # uses -oc URI (e.g. a future -o libvirt); otherwise cli refuses -oc

    def __init__(self, opts: OutputOptions) -> None:
        self.opts = opts
        self.format = opts.format or "raw"

    def precheck(self) -> None:
        """Validate options before any work starts (no side effects)."""
        if self.format not in self.formats:
            raise V2VError(f"-o {self.name}: -of {self.format} is not supported "
                           f"(use {' or '.join(self.formats)})")
        unknown = sorted(set(self.opts.options) - set(self.known_options))
        if unknown:
            raise V2VError(f"-o {self.name}: unknown -oo option {unknown[0]}")

    @abstractmethod
    def setup(self, name: str, source: Source) -> Target:
        """Prepare each source disk's destination (in `source.disks` order)."""

    @abstractmethod
    def finalize(self, meta: TargetMeta, target: Target) -> list[str]:
        """Write metadata (through `target.files`); return the final names written."""

    def after_commit(self, meta: TargetMeta, target: Target) -> None:
        """Runs once the output is in place (e.g. -oo qemu-boot); nothing by default."""
        return None


class FilesOutput(Output):
    """An output writing NAME-sdX disk files and metadata files into the -os directory.

    Every such output takes `-oo compressed` (virt-v2v's option, also `--compressed`): qcow2
    disks written with compressed clusters (`qemu-img convert -c`); refused without -of qcow2.
    """

    def __init__(self, opts: OutputOptions) -> None:
        super().__init__(opts)
        self.known_options = (*type(self).known_options, "compressed")

    @property
    def compressed(self) -> bool:
        return "compressed" in self.opts.options

    def metadata_files(self, name: str) -> list[str]:
        """Base names of the metadata files `finalize` writes (checked for an existing guest)."""
        return []

    def precheck(self) -> None:
        super().precheck()
        if self.compressed and self.format != "qcow2":
            raise V2VError(f"-o {self.name}: -oo compressed needs -of qcow2 (a {self.format} "
                           "image cannot hold compressed data)")
        check_writable_dir(self.opts.storage)

    def disk_file_name(self, name: str, disk: SourceDisk) -> str:
        return disk_file_name(name, disk)

    def setup(self, name: str, source: Source) -> Target:
        outdir = check_writable_dir(self.opts.storage)
        names = [self.disk_file_name(name, d) for d in source.disks]
        for n in names:
            if not n or "/" in n or n.startswith(".") or "\0" in n:
                raise V2VError(f"-o {self.name}: invalid disk file name {n!r}")
        if len(set(names)) != len(names):
            raise V2VError(f"-o {self.name}: two disks would have the same file name")
        disks = [os.path.join(outdir, n) for n in names]
        staging = Staging(outdir, name, overwrite=self.opts.overwrite)  # claims the name
        try:
            refuse_existing(name, outdir, disks + [os.path.join(outdir, m)
                                                  for m in self.metadata_files(name)],
                            self.opts.overwrite)
            dests = tuple(FileDestination(staging, p, self.format) for p in disks)
        except BaseException:
            staging.abort()
            raise
        return Target(dests, staging)


__all__ = ["CopyTarget", "Destination", "FileDestination", "FilesOutput", "Output",
           "OutputOptions", "Staging", "Target"]
