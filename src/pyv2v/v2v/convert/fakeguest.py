"""`FakeGuest`: the converters' `Guest` seam over a directory tree on the host, for unit and
golden tests only: fake guest commands are registered as Python callables, and every call (with
its environment) is recorded.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from ...errors import V2VError
from .guest import Guest

FakeCommand = Callable[["FakeGuest", list[str]], str]


class FakeGuest(Guest):
    """A Guest over a directory tree on the host, for unit tests only."""

    def __init__(self, root: Path, commands: dict[str, FakeCommand] | None = None,
                 uuids: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        self.commands: dict[str, FakeCommand] = dict(commands or {})
        self.uuids = dict(uuids or {})     # device → filesystem UUID, for fs_uuid
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []   # the environment of each call, parallel to calls

    def fs_uuid(self, device: str) -> str | None:
        return self.uuids.get(device)

    def host_path(self, path: str) -> Path:
        if not path.startswith("/"):
            raise ValueError(f"guest path must be absolute: {path}")
        return self.root / path.lstrip("/")

    def read(self, path: str) -> bytes:
        try:
            return self.host_path(path).read_bytes()
        except OSError as e:
            raise V2VError(f"reading {path}: {e.strerror}") from e

    def write(self, path: str, data: bytes | str) -> None:
        p = self.host_path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.host_path(path))

    def is_file(self, path: str) -> bool:
        return self.host_path(path).is_file()

    def is_dir(self, path: str) -> bool:
        return self.host_path(path).is_dir()

    def ls(self, path: str) -> list[str]:
        return sorted(os.listdir(self.host_path(path)))

    def mkdir_p(self, path: str) -> None:
        self.host_path(path).mkdir(parents=True, exist_ok=True)

    def rm_f(self, path: str) -> None:
        p = self.host_path(path)
        if p.is_symlink() or p.is_file():
            p.unlink()

    def rm_rf(self, path: str) -> None:
        p = self.host_path(path)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            self.rm_f(path)

    def chmod(self, mode: int, path: str) -> None:
        os.chmod(self.host_path(path), mode)

    def symlink(self, target: str, linkname: str) -> None:
        p = self.host_path(linkname)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.exists():
            p.unlink()
        os.symlink(target, p)

    def readlink(self, path: str) -> str | None:
        p = self.host_path(path)
        return os.readlink(p) if p.is_symlink() else None

    def find(self, path: str) -> list[str]:
        base = self.host_path(path)
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            for n in sorted(dirnames + filenames):
                out.append(os.path.relpath(os.path.join(dirpath, n), base))
        return sorted(out)

    def cp(self, src: str, dest: str) -> None:
        try:
            shutil.copyfile(self.host_path(src), self.host_path(dest))
        except OSError as e:
            raise V2VError(f"copying {src} to {dest}: {e.strerror}") from e

    def checksum(self, path: str) -> str:
        return hashlib.sha256(self.read(path)).hexdigest()

    def command_env(self, argv: list[str], env: Mapping[str, str]) -> str:
        return self._run(argv, dict(env))

    def command(self, argv: list[str]) -> str:
        return self._run(argv, {})

    def _run(self, argv: list[str], env: dict[str, str]) -> str:
        self.calls.append(list(argv))
        self.envs.append(env)
        prog = posixpath.basename(argv[0])
        fn = self.commands.get(prog)
        if fn is None:
            raise V2VError(f"{' '.join(argv)} failed in the guest: command not found")
        return fn(self, argv)
