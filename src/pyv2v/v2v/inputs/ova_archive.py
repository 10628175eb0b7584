"""An OVA's files, wherever they are: an uncompressed tar (read in place), a zip or a compressed
tar (extracted, because qemu cannot seek inside them), or an unpacked directory.

`open_ova(path)` → an `Archive` listing regular files by normalized name, reading the small
ones (OVF, manifest), hashing any of them, and giving each disk to qemu as a `DiskRef`: a path
to a file, or for a tar member the tar itself with the member's byte offset and size (qemu's
raw driver with offset/size in a `json:` spec: nothing is copied).

The archive is untrusted: member names that are absolute or climb out (`../`) are ignored,
duplicate names are refused (the manifest must check the bytes that are then read), members
must be regular files lying entirely inside the file (else: truncated), and files of an
unpacked directory must resolve inside it unless --allow-external-files.  Extraction goes to a
private 0700 temporary directory removed at exit, never using names from the archive as paths.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from ... import log, process
from ...errors import V2VError

MAX_SMALL = 16 << 20        # an OVF or manifest larger than this is not one
MAX_MEMBERS = 10000
COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"\xfd7zXZ": "xz", b"BZh": "bzip2"}


@dataclass(frozen=True)
class DiskRef:
    path: str              # the file qemu opens
    offset: int = 0        # for a tar member: where its data starts …
    size: int | None = None  # … and how long it is (None: the whole file)


def safe_name(name: str) -> str | None:
    """A member name normalized to a relative POSIX path, or None if it escapes."""
    n = posixpath.normpath(name.replace("\\", "/")).lstrip("/") if name else ""
    if not n or n == "." or n == ".." or n.startswith("../") or name.startswith("/"):
        return None
    return n


# A unix socket's path must fit sockaddr_un (108 bytes with its NUL): sockets live in a short
# private directory, never under a deep PYV2V_TMPDIR (nbdkit refuses "-U: path too long").
SOCKET_PATH_MAX = 107
SOCKET_NAME_ROOM = 16  # "disk123.sock" and the like


def private_sockdir(prefix: str) -> str:
    """A fresh 0700 directory, removed at exit, for unix sockets (and small files beside them):
    under PYV2V_TMPDIR when the sockets' paths fit there, else under the system's /tmp."""
    for base in (os.environ.get("PYV2V_TMPDIR"), tempfile.gettempdir(), "/tmp"):
        if base and len(os.path.join(base, prefix + "x" * 8)) + SOCKET_NAME_ROOM <= SOCKET_PATH_MAX:
            return _private_dir(prefix, base)
    raise V2VError("no temporary directory with a path short enough for unix sockets")


def private_tmpdir(prefix: str) -> str:
    return _private_dir(prefix, os.environ.get("PYV2V_TMPDIR") or "/var/tmp")


def _private_dir(prefix: str, base: str) -> str:
    try:
        d = tempfile.mkdtemp(prefix=prefix, dir=base)  # mode 0700
    except OSError as e:
        raise V2VError(f"cannot create a temporary directory in {base}: {e.strerror}") from e
    process.on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


class Archive:
    """Regular files of an OVA by name; subclasses say where the bytes are."""

    kind = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self.files: dict[str, DiskRef] = {}

    def _add(self, name: str, ref: DiskRef) -> None:
        n = safe_name(name)
        if n is None:
            log.warning(f"{self.path}: ignoring member with an unsafe name {name[:80]!r}")
            return
        if n in self.files:
            raise V2VError(f"{self.path}: the OVA holds {n} twice (refusing an ambiguous "
                           "archive)")
        if len(self.files) >= MAX_MEMBERS:
            raise V2VError(f"{self.path}: too many files in the OVA")
        self.files[n] = ref

    def open(self, name: str) -> IO[bytes]:
        ref = self.files[name]
        f = open(ref.path, "rb")  # noqa: SIM115 - returned to the caller
        f.seek(ref.offset)
        return f

    def chunks(self, name: str) -> Iterator[bytes]:
        ref = self.files[name]
        left = ref.size if ref.size is not None else os.stat(ref.path).st_size
        with self.open(name) as f:
            while left > 0:
                b = f.read(min(left, 4 << 20))
                if not b:
                    raise V2VError(f"{self.path}: {name} is truncated")
                left -= len(b)
                yield b

    def read_small(self, name: str) -> bytes:
        ref = self.files[name]
        size = ref.size if ref.size is not None else os.stat(ref.path).st_size
        if size > MAX_SMALL:
            raise V2VError(f"{self.path}: {name} is too large ({size} bytes) for an OVF/manifest")
        return b"".join(self.chunks(name))

    def digest(self, name: str, algo: str) -> str:
        h = hashlib.new(algo)
        for b in self.chunks(name):
            h.update(b)
        return h.hexdigest()

    def gunzip(self, name: str) -> str:
        """A gzip-compressed member decompressed into a private temporary file (qemu cannot
        read gzip): this costs the disk's full size in temporary space."""
        out = os.path.join(private_tmpdir("pyv2v-ova-"), "disk")
        log.message(f"Decompressing {name} to temporary space (gzip-compressed disk)")
        try:
            with self.open(name) as raw, gzip.GzipFile(fileobj=raw) as gz, \
                    open(out, "xb") as dst:
                shutil.copyfileobj(gz, dst, 4 << 20)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise V2VError(f"{self.path}: cannot decompress {name}: {e}") from e
        return out


class TarArchive(Archive):
    kind = "tar"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        total = os.stat(path).st_size
        try:
            with tarfile.open(path, "r:") as tar:
                for m in tar:
                    if m.isdir():
                        continue
                    if not m.isreg() or m.issparse():
                        log.warning(f"{path}: ignoring {m.name[:80]!r} (not a regular file)")
                        continue
                    if m.offset_data + m.size > total:
                        raise V2VError(f"{path}: the OVA is truncated ({m.name} ends at byte "
                                       f"{m.offset_data + m.size}, the file has {total})")
                    self._add(m.name, DiskRef(path, m.offset_data, m.size))
        except (tarfile.TarError, EOFError, UnicodeDecodeError) as e:
            raise V2VError(f"{path}: not a valid OVA (tar archive): {e}") from e


class ExtractedArchive(Archive):
    """A zip or compressed tar: the members are extracted to private temporary files."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(path)
        self.kind = kind
        self.dir = private_tmpdir("pyv2v-ova-")
        log.message(f"Extracting {os.path.basename(path)} to temporary space ({kind}: qemu "
                    "cannot read disks inside it in place)")
        try:
            if kind == "zip":
                self._unzip()
            else:
                self._untar()
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise V2VError(f"{path}: not a valid OVA ({kind} archive): {e}") from e

    def _target(self) -> str:
        return os.path.join(self.dir, f"m{len(self.files)}")

    def _unzip(self) -> None:
        with zipfile.ZipFile(self.path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            need = sum(i.file_size for i in infos)
            free = shutil.disk_usage(self.dir).free
            if need > free:
                raise V2VError(f"{self.path}: extracting needs {need >> 20} MiB, only "
                               f"{free >> 20} MiB free in {self.dir}")
            for i in infos:
                out = self._target()
                with zf.open(i) as src, open(out, "xb") as dst:
                    shutil.copyfileobj(src, dst, 4 << 20)
                self._add(i.filename, DiskRef(out))

    def _untar(self) -> None:
        with tarfile.open(self.path, "r:*") as tar:
            for m in tar:
                if not m.isreg():
                    continue
                src = tar.extractfile(m)
                if src is None:
                    continue
                out = self._target()
                with src, open(out, "xb") as dst:
                    shutil.copyfileobj(src, dst, 4 << 20)
                self._add(m.name, DiskRef(out))


class DirArchive(Archive):
    kind = "directory"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        for top, dirs, names in os.walk(path):
            dirs.sort()
            for n in sorted(names):
                full = os.path.join(top, n)
                if stat.S_ISREG(os.stat(full).st_mode) if os.path.exists(full) else False:
                    self._add(os.path.relpath(full, path), DiskRef(full))


def open_ova(path: str) -> Archive:
    if os.path.isdir(path):
        return DirArchive(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise V2VError(f"cannot read OVA {path}: {e.strerror}") from e
    if magic.startswith(b"PK\x03\x04"):
        return ExtractedArchive(path, "zip")
    for m, kind in COMPRESSED_MAGIC.items():
        if magic.startswith(m):
            return ExtractedArchive(path, f"{kind}-compressed tar")
    return TarArchive(path)
