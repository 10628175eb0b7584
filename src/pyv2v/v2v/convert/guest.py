"""The narrow seam between converters and the guest: `Guest`, over libguestfs or a fake tree.

Converters read and edit guest files and run the guest's own tools (dpkg, update-initramfs,
dracut …) only through this interface.  `LibguestfsGuest` implements it on a launched, mounted
libguestfs handle (commands run chrooted into the guest inside the appliance; guest content never
touches the host).  `FakeGuest` (fakeguest.py) implements it over a temporary directory for unit
tests.
"""

from __future__ import annotations

import fnmatch
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import V2VError


class Guest(ABC):
    """File and command access to the guest's mounted filesystems (absolute guest paths)."""

    @abstractmethod
    def read(self, path: str) -> bytes: ...

    @abstractmethod
    def write(self, path: str, data: bytes | str) -> None: ...

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def is_file(self, path: str) -> bool: ...

    @abstractmethod
    def is_dir(self, path: str) -> bool: ...

    @abstractmethod
    def ls(self, path: str) -> list[str]:
        """Names in a directory (not paths), sorted."""

    @abstractmethod
    def mkdir_p(self, path: str) -> None: ...

    @abstractmethod
    def rm_f(self, path: str) -> None: ...

    @abstractmethod
    def rm_rf(self, path: str) -> None: ...

    @abstractmethod
    def chmod(self, mode: int, path: str) -> None: ...

    @abstractmethod
    def symlink(self, target: str, linkname: str) -> None: ...

    @abstractmethod
    def readlink(self, path: str) -> str | None:
        """The target of a symlink, or None if `path` is not a symlink."""

    @abstractmethod
    def find(self, path: str) -> list[str]:
        """Every path below `path`, relative to it (like `find` minus the prefix)."""

    @abstractmethod
    def command(self, argv: list[str]) -> str:
        """Run a program of the guest's own, chrooted into the guest; V2VError on failure."""

    @abstractmethod
    def cp(self, src: str, dest: str) -> None:
        """Copy a file inside the guest (binary-safe, any size)."""

    @abstractmethod
    def checksum(self, path: str) -> str:
        """The sha256 of a guest file, computed where the file is."""

    # Derived helpers -------------------------------------------------------------------

    def command_env(self, argv: list[str], env: Mapping[str, str]) -> str:
        """Run a guest program with extra environment variables (through the guest's env)."""
        return self.command(["/usr/bin/env", *(f"{k}={v}" for k, v in env.items()), *argv])

    def fs_uuid(self, device: str) -> str | None:
        """The UUID of the filesystem (or swap, LUKS header) on a device, or None.

        `device` is the conversion's own name for it (an inspection mountpoint's device)."""
        return None

    def read_head(self, path: str, size: int) -> bytes:
        """The first `size` bytes of a guest file (without reading a huge file whole)."""
        return self.read(path)[:size]

    def download(self, path: str, local: str) -> None:
        """Copy a guest file to a host file (any size)."""
        with open(local, "wb") as f:
            f.write(self.read(path))

    def upload(self, local: str, path: str) -> None:
        """Copy a host file into the guest (any size)."""
        with open(local, "rb") as f:
            self.write(path, f.read())

    def read_text(self, path: str) -> str:
        return self.read(path).decode("utf-8", errors="replace")

    def read_lines(self, path: str) -> list[str]:
        return self.read_text(path).splitlines()

    def glob(self, pattern: str) -> list[str]:
        """Paths matching a pattern whose wildcards are in the last component only."""
        d, base = posixpath.split(pattern)
        if not self.is_dir(d):
            return []
        return [posixpath.join(d, n) for n in self.ls(d) if fnmatch.fnmatch(n, base)]

    def edit_text(self, path: str, fn: Callable[[str], str]) -> bool:
        """Rewrite a text file through `fn`; returns True if it changed."""
        old = self.read_text(path)
        new = fn(old)
        if new != old:
            self.write(path, new)
            return True
        return False


class LibguestfsGuest(Guest):
    """A Guest over a launched libguestfs handle with the guest's filesystems mounted."""

    def __init__(self, g: Any) -> None:
        self.g = g

    def _wrap(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RuntimeError as e:
            raise V2VError(f"{what}: {e}") from e

    def read(self, path: str) -> bytes:
        data = self._wrap(f"reading {path}", lambda: self.g.read_file(path))
        return data if isinstance(data, bytes) else str(data).encode()

    def write(self, path: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self._wrap(f"writing {path}", lambda: self.g.write(path, raw))

    def read_head(self, path: str, size: int) -> bytes:
        return bytes(self._wrap(f"reading {path}", lambda: self.g.pread(path, size, 0)))

    def download(self, path: str, local: str) -> None:
        self._wrap(f"reading {path}", lambda: self.g.download(path, local))

    def upload(self, local: str, path: str) -> None:
        self._wrap(f"writing {path}", lambda: self.g.upload(local, path))

    def fs_uuid(self, device: str) -> str | None:
        try:
            return str(self.g.vfs_uuid(device)) or None
        except RuntimeError:
            return None

    def exists(self, path: str) -> bool:
        return bool(self.g.exists(path))

    def is_file(self, path: str) -> bool:
        return bool(self.g.is_file(path, followsymlinks=True))

    def is_dir(self, path: str) -> bool:
        return bool(self.g.is_dir(path, followsymlinks=True))

    def ls(self, path: str) -> list[str]:
        return sorted(self._wrap(f"listing {path}", lambda: self.g.ls(path)))

    def mkdir_p(self, path: str) -> None:
        self._wrap(f"creating {path}", lambda: self.g.mkdir_p(path))

    def rm_f(self, path: str) -> None:
        self._wrap(f"removing {path}", lambda: self.g.rm_f(path))

    def rm_rf(self, path: str) -> None:
        self._wrap(f"removing {path}", lambda: self.g.rm_rf(path))

    def chmod(self, mode: int, path: str) -> None:
        self._wrap(f"chmod {path}", lambda: self.g.chmod(mode, path))

    def symlink(self, target: str, linkname: str) -> None:
        self._wrap(f"linking {linkname}", lambda: self.g.ln_sf(target, linkname))

    def readlink(self, path: str) -> str | None:
        if not self.g.is_symlink(path):
            return None
        return str(self.g.readlink(path))

    def find(self, path: str) -> list[str]:
        return list(self._wrap(f"listing {path}", lambda: self.g.find(path)))

    def cp(self, src: str, dest: str) -> None:
        self._wrap(f"copying {src} to {dest}", lambda: self.g.cp(src, dest))

    def checksum(self, path: str) -> str:
        return str(self._wrap(f"checksumming {path}", lambda: self.g.checksum("sha256", path)))

    def command(self, argv: list[str]) -> str:
        try:
            return str(self.g.command(argv))
        except RuntimeError as e:
            raise V2VError(f"{' '.join(argv)} failed in the guest: {e}") from e
