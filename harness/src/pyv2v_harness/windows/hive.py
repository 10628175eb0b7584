"""Windows registry hives for phony guests: the minimal empty hive (our own writer, from the
documented regf format) and filling it with keys and values through the hivex binding.

Layout written by `new_hive` (offsets in the file; cell offsets stored in the hive are relative to
the first hbin at 0x1000, as hivex and Windows expect):

    0x0000  base block "regf" (4 KiB): sequence numbers, version 1.3, root cell offset,
            length of the hive bins, UTF-16 file name, XOR checksum of the first 508 bytes
    0x1000  one hbin (4 KiB): 32-byte header, then cells (int32 size, negative = in use):
            the root "nk" key (flags HIVE_ENTRY|NO_DELETE|COMP_NAME), its "sk" security
            descriptor (a self-linked list of one), and one free cell filling the bin.

Everything else (subkeys, value lists, growing the hive) is hivex's job: `populate` opens the
empty hive read-write and adds a `HiveTree`, then commits.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import hivex

# Registry value types (winnt.h).
REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 7, 11

Value = tuple[str, int, bytes]  # (name, type, raw data)
HiveTree = Mapping[str, Sequence[Value]]  # "Key\\Sub" -> values ("" = the root key)

FILETIME = 133_000_000_000_000_000  # a fixed time (2022-06) so builds are repeatable
HBIN_SIZE = 0x1000
NK_ROOT_FLAGS = 0x0004 | 0x0008 | 0x0020


def sz(s: str) -> bytes:
    return (s + "\0").encode("utf-16-le")


def multi_sz(items: Iterable[str]) -> bytes:
    return "".join(i + "\0" for i in items).encode("utf-16-le") + b"\0\0"


def dword(n: int) -> bytes:
    return struct.pack("<I", n)


def qword(n: int) -> bytes:
    return struct.pack("<Q", n)


def _sid(authority: int, *subs: int) -> bytes:
    return struct.pack(f"<BB6s{len(subs)}I", 1, len(subs), authority.to_bytes(6, "big"), *subs)


def security_descriptor() -> bytes:
    """Self-relative SD: owner Administrators, group SYSTEM, DACL: Everyone KEY_ALL_ACCESS."""
    everyone = _sid(1, 0)
    ace = struct.pack("<BBHI", 0, 0x02, 8 + len(everyone), 0x000F003F) + everyone
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
    owner, group = _sid(5, 32, 544), _sid(5, 18)
    dacl_off = 20
    owner_off = dacl_off + len(acl)
    group_off = owner_off + len(owner)
    header = struct.pack("<BBHIIII", 1, 0, 0x8004, owner_off, group_off, 0, dacl_off)
    return header + acl + owner + group


def _cell(data: bytes) -> bytes:
    """An in-use cell: negative size including the 4-byte size field, padded to 8 bytes."""
    size = (len(data) + 4 + 7) & ~7
    return struct.pack("<i", -size) + data + b"\0" * (size - 4 - len(data))


def _root_nk(name: str, sk_offset: int) -> bytes:
    raw = name.encode("ascii")
    return (
        struct.pack(
            "<2sHQIIIIIIIIIIIIIIIHH",
            b"nk",
            NK_ROOT_FLAGS,
            FILETIME,
            0,
            0xFFFFFFFF,  # parent: none
            0,
            0,
            0xFFFFFFFF,
            0xFFFFFFFF,  # subkeys (stable, volatile) and their lists
            0,
            0xFFFFFFFF,  # values and value list
            sk_offset,
            0xFFFFFFFF,  # security, class name
            0,
            0,
            0,
            0,
            0,  # max name/class/value name/value data lengths, work var
            len(raw),
            0,
        )
        + raw
    )


def _sk(self_offset: int) -> bytes:
    sd = security_descriptor()
    return struct.pack("<2sHIIII", b"sk", 0, self_offset, self_offset, 1, len(sd)) + sd


def empty_hive_bytes(root_name: str = "ROOT", file_name: str = "") -> bytes:
    """The bytes of a valid hive holding only an empty root key."""
    root_off = 0x20
    nk = _cell(_root_nk(root_name, 0))  # size does not depend on the sk offset
    sk_off = root_off + len(nk)
    nk = _cell(_root_nk(root_name, sk_off))
    sk = _cell(_sk(sk_off))
    used = 0x20 + len(nk) + len(sk)
    free = struct.pack("<i", HBIN_SIZE - used) + b"\0" * (HBIN_SIZE - used - 4)
    hbin_header = struct.pack("<4sIIQQI", b"hbin", 0, HBIN_SIZE, 0, FILETIME, 0)
    hbin = hbin_header + nk + sk + free
    assert len(hbin) == HBIN_SIZE
    name = file_name.encode("utf-16-le")[:64].ljust(64, b"\0")
    base = (
        struct.pack("<4sIIQIIIIIII", b"regf", 1, 1, FILETIME, 1, 3, 0, 1, root_off, HBIN_SIZE, 1)
        + name
    )
    base = base.ljust(0x1FC, b"\0")
    checksum = 0
    for (word,) in struct.iter_unpack("<I", base):
        checksum ^= word
    base = (base + struct.pack("<I", checksum)).ljust(0x1000, b"\0")
    return base + hbin


def new_hive(path: Path, root_name: str = "ROOT") -> None:
    """Write the minimal empty hive to `path` (created exclusively)."""
    with open(path, "xb") as f:
        f.write(empty_hive_bytes(root_name, file_name=path.name))


def populate(path: Path, tree: HiveTree) -> None:
    """Add every key of `tree` (parents created as needed) with its values, then commit."""
    h = hivex.Hivex(str(path), write=True)
    for key in sorted(tree):
        node = h.root()
        for part in filter(None, key.split("\\")):
            child = h.node_get_child(node, part)
            node = child if child else h.node_add_child(node, part)
        if tree[key]:
            h.node_set_values(node, [{"key": n, "t": t, "value": v} for n, t, v in tree[key]])
    h.commit(None)


def build_hive(path: Path, tree: HiveTree, root_name: str = "ROOT") -> None:
    """`new_hive` then `populate`: a complete hive file at `path`."""
    new_hive(path, root_name)
    populate(path, tree)
