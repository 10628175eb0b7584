"""Windows registry hives of the guest, edited with hivex, with a log of every change.

`Hive.open(guest, path, name)` downloads a hive from the guest into a private temporary file,
opens it with the hivex binding and refuses a corrupt one with one line.  Keys are addressed by
tuples of names (case-insensitive, as Windows does); `set` creates missing keys and records each
change (key, value, before → after) in `changes`, which the converter logs with ``-v``.
`commit` writes the hive back into the guest; `close` removes the temporary copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from .... import log
from ....errors import V2VError
from ..guest import Guest

REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ = 1, 2, 3, 4, 7
TYPE_NAMES = {
    REG_SZ: "sz",
    REG_EXPAND_SZ: "expand_sz",
    REG_BINARY: "binary",
    REG_DWORD: "dword",
    REG_MULTI_SZ: "multi_sz",
}

Value = str | int | bytes | list[str]


def encode(vtype: int, value: Value) -> bytes:
    """A Python value as the registry stores it (strings UTF-16LE, NUL-terminated)."""
    if vtype in (REG_SZ, REG_EXPAND_SZ):
        return (str(value) + "\0").encode("utf-16-le")
    if vtype == REG_DWORD:
        return int(value).to_bytes(4, "little")  # type: ignore[arg-type]
    if vtype == REG_MULTI_SZ:
        assert isinstance(value, list)
        return "".join(s + "\0" for s in value).encode("utf-16-le") + b"\0\0"
    assert isinstance(value, bytes)
    return value


def decode(vtype: int, data: bytes) -> Value:
    if vtype in (REG_SZ, REG_EXPAND_SZ):
        return data.decode("utf-16-le", errors="replace").split("\0", 1)[0]
    if vtype == REG_DWORD and len(data) >= 4:
        return int.from_bytes(data[:4], "little")
    if vtype == REG_MULTI_SZ:
        return [s for s in data.decode("utf-16-le", errors="replace").split("\0") if s]
    return data


def render(vtype: int | None, value: Value | None) -> str:
    if vtype is None or value is None:
        return "(none)"
    if isinstance(value, bytes):
        return f"{TYPE_NAMES.get(vtype, str(vtype))}:{value.hex()}"
    if isinstance(value, list):
        return "multi_sz:" + ",".join(repr(s) for s in value)
    if isinstance(value, int):
        return f"dword:{value:#x}"
    return f"{TYPE_NAMES.get(vtype, str(vtype))}:{value!r}"


@dataclass(frozen=True)
class Change:
    key: str  # "HKLM\\SYSTEM\\ControlSet001\\Services\\viostor"
    name: str  # value name ("" is the default value)
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.key} [{self.name or '(default)'}]: {self.before} -> {self.after}"


class Hive:
    def __init__(self, guest: Guest, path: str, name: str, h: Any, tmpdir: str) -> None:
        self.guest, self.path, self.name = guest, path, name
        self.h, self._tmpdir = h, tmpdir
        self.local = os.path.join(tmpdir, "hive")
        self.changes: list[Change] = []

    @classmethod
    def open(cls, guest: Guest, path: str, name: str) -> Hive:
        import hivex  # Debian python3-hivex (system site-packages)

        tmpdir = tempfile.mkdtemp(prefix="pyv2v-hive-")  # 0700
        local = os.path.join(tmpdir, "hive")
        try:
            guest.download(path, local)
            h = hivex.Hivex(local, write=True)
        except (RuntimeError, OSError) as e:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise V2VError(
                f"the guest's registry hive {path} ({name}) is corrupt or unreadable: {e}"
            ) from None
        except V2VError:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        return cls(guest, path, name, h, tmpdir)

    # Reading -------------------------------------------------------------------------------

    def node(self, key: tuple[str, ...]) -> int | None:
        n = self.h.root()
        for part in key:
            n = self.h.node_get_child(n, part)
            if not n:
                return None
        return int(n)

    def children(self, key: tuple[str, ...]) -> list[str]:
        n = self.node(key)
        return [] if n is None else [self.h.node_name(c) for c in self.h.node_children(n)]

    def raw(self, key: tuple[str, ...], name: str) -> tuple[int, bytes] | None:
        n = self.node(key)
        if n is None:
            return None
        v = self._value(n, name)
        if v is None:
            return None
        vtype, data = self.h.value_value(v)
        return int(vtype), bytes(data)

    def _value(self, n: int, name: str) -> int | None:
        # (hivex's node_get_value raises instead of answering "none" on some nodes)
        for v in self.h.node_values(n):
            if self.h.value_key(v).lower() == name.lower():
                return int(v)
        return None

    def get(self, key: tuple[str, ...], name: str) -> Value | None:
        r = self.raw(key, name)
        return None if r is None else decode(*r)

    def get_str(self, key: tuple[str, ...], name: str) -> str | None:
        v = self.get(key, name)
        return v if isinstance(v, str) else None

    def get_int(self, key: tuple[str, ...], name: str) -> int | None:
        v = self.get(key, name)
        return v if isinstance(v, int) else None

    # Writing -------------------------------------------------------------------------------

    def _create(self, key: tuple[str, ...]) -> int:
        n = self.h.root()
        for i, part in enumerate(key):
            c = self.h.node_get_child(n, part)
            if not c:
                c = self.h.node_add_child(n, part)
                self.changes.append(
                    Change(self._keyname(key[: i + 1]), "", "(no key)", "(key created)")
                )
            n = c
        return int(n)

    def _keyname(self, key: tuple[str, ...]) -> str:
        return "\\".join((self.name, *key))

    def set(self, key: tuple[str, ...], name: str, vtype: int, value: Value) -> None:
        """Set one value (creating the key); unchanged values are not rewritten or logged."""
        n = self._create(key)
        old = self.raw(key, name)
        data = encode(vtype, value)
        if old == (vtype, data):
            return
        self.h.node_set_value(n, {"key": name, "t": vtype, "value": data})
        before = render(old[0], decode(*old)) if old else "(none)"
        self.changes.append(Change(self._keyname(key), name, before, render(vtype, value)))

    def set_values(self, key: tuple[str, ...], values: dict[str, tuple[int, Value]]) -> None:
        for name, (vtype, value) in values.items():
            self.set(key, name, vtype, value)

    def commit(self) -> None:
        """Write the edited hive back into the guest (only if something changed)."""
        if not self.changes:
            return
        self.h.commit(self.local)
        self.guest.upload(self.local, self.path)
        for c in self.changes:
            log.debug(f"registry: {c}")

    def close(self) -> None:
        shutil.rmtree(self._tmpdir, ignore_errors=True)
