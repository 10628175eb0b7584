"""Initramfs images as data: split into segments, decompress, read and write "newc" cpio.

An initramfs is a sequence of cpio archives, each optionally compressed, that the kernel unpacks
in order (a later file replaces an earlier one).  initramfs-tools writes uncompressed early
archives (CPU microcode) followed by one compressed main archive.  Nothing here runs guest code:
it all happens on the conversion host.
"""

from __future__ import annotations

import lzma
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass

from .... import process

TRAILER = "TRAILER!!!"
S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000


class CpioError(Exception):
    """The image is not in a form this module understands (the caller falls back)."""


@dataclass
class Entry:
    mode: int
    data: bytes          # file contents, or a symlink's target
    mtime: int = 0


def _align4(n: int) -> int:
    return (n + 3) & ~3


def read_newc(buf: bytes, pos: int = 0) -> tuple[dict[str, Entry], int, int]:
    """The entries of the newc archive at `pos` (a later duplicate wins, as in the kernel),
    the offset just past its trailer and the offset of the trailer entry."""
    entries: dict[str, Entry] = {}
    while True:
        here = pos
        if buf[pos:pos + 6] not in (b"070701", b"070702"):
            raise CpioError(f"no cpio header at offset {pos}")
        try:
            f = [int(buf[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        except ValueError as e:
            raise CpioError(f"bad cpio header at offset {pos}") from e
        mode, size, namesize = f[1], f[6], f[11]
        name_end = pos + 110 + namesize
        name = buf[pos + 110:name_end - 1].decode("utf-8", "surrogateescape")
        data_at = _align4(name_end)
        data = buf[data_at:data_at + size]
        if len(data) != size:
            raise CpioError("truncated cpio archive")
        pos = _align4(data_at + size)
        if name == TRAILER:
            return entries, pos, here
        name = name.removeprefix("./").lstrip("/")
        if name and name != ".":
            entries[name] = Entry(mode, data, f[5])


def write_newc(entries: list[tuple[str, Entry]], mtime: int = 0) -> bytes:
    """A newc archive of `entries` (owner root), with its trailer."""
    out = bytearray()
    # Inode numbers far above mkinitramfs's; no entry has nlink > 1, so none is a hard link.
    for ino, (name, e) in enumerate([*entries, (TRAILER, Entry(0, b""))], start=0x7F000000):
        raw = name.encode("utf-8", "surrogateescape") + b"\0"
        nlink = 2 if e.mode & S_IFMT == S_IFDIR else 1
        fields = (ino if name != TRAILER else 0, e.mode, 0, 0, nlink, mtime, len(e.data),
                  0, 0, 0, 0, len(raw), 0)
        out += b"070701" + b"".join(b"%08X" % v for v in fields) + raw
        out += b"\0" * (_align4(len(out)) - len(out)) + e.data
        out += b"\0" * (_align4(len(out)) - len(out))
    return bytes(out)


def _run_tool(argv: list[str], data: bytes) -> bytes:
    """Decompress `data` with a host program (IN and OUT in `argv` name the files)."""
    if shutil.which(argv[0]) is None:
        raise CpioError(f"{argv[0]} is not installed on the conversion host")
    tmp = tempfile.mkdtemp(prefix="pyv2v-cpio-")
    try:
        src, dst = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        with open(src, "wb") as f:
            f.write(data)
        cmd = [{"IN": src, "OUT": dst}.get(a, a) for a in argv]
        res = process.run(cmd, check=False, timeout=300)
        if res.rc != 0:
            raise CpioError(f"{argv[0]} failed: {res.err.strip()}")
        with open(dst, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


MAGIC = {"gzip": b"\x1f\x8b", "xz": b"\xfd7zXZ\0", "zstd": b"\x28\xb5\x2f\xfd",
         "lz4": b"\x02\x21\x4c\x18"}     # lz4: the legacy format, the one the kernel reads


def method_of(data: bytes) -> str:
    for name, magic in MAGIC.items():
        if data.startswith(magic):
            return name
    raise CpioError(f"unknown compression (magic {data[:4].hex()})")


def decompress(data: bytes) -> bytes:
    """Decompress one segment that must run to the end of `data` (no trailing archive)."""
    method, rest = method_of(data), b""
    if method == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data) + d.flush()
        rest = d.unused_data
    elif method == "xz":
        dx = lzma.LZMADecompressor()
        out, rest = dx.decompress(data), dx.unused_data
    elif method == "zstd":
        out = _run_tool(["zstd", "-dqf", "-o", "OUT", "IN"], data)
    else:
        out = _run_tool(["lz4", "-dqf", "IN", "OUT"], data)
    if rest.strip(b"\0"):
        raise CpioError("data follows the compressed archive")
    return out


def compress(method: str, data: bytes) -> bytes:
    """Compress with `method` at a fast level, in a form the kernel unpacks."""
    if method == "gzip":
        c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()
    if method == "xz":
        return lzma.compress(data, check=lzma.CHECK_CRC32, preset=1)
    if method == "zstd":
        return _run_tool(["zstd", "-qf", "-1", "-T0", "-o", "OUT", "IN"], data)
    if method == "lz4":
        return _run_tool(["lz4", "-qf", "-l", "-1", "IN", "OUT"], data)
    return data


@dataclass
class Image:
    prefix: bytes        # the early archives (microcode), kept byte for byte
    method: str          # the main archive's compression, "none" when uncompressed
    main: bytes          # the main archive, uncompressed
    entries: dict[str, Entry]
    trailer_at: int      # offset of the main archive's trailer entry

    def with_entries(self, extra: list[tuple[str, Entry]], mtime: int) -> bytes:
        """The image with `extra` added to the end of its main archive (same compression)."""
        main = self.main[:self.trailer_at] + write_newc(extra, mtime)
        return self.prefix + compress(self.method, main)


def split_image(image: bytes) -> Image:
    """The image's early archives and its (last) main archive, decompressed.  `entries` are
    those of every archive (the kernel unpacks them in order: Debian 13 puts the compressed
    modules in an uncompressed early archive and their indexes in the main one)."""
    pos, early = 0, dict[str, Entry]()
    while True:
        while pos < len(image) and image[pos] == 0:
            pos += 1
        if pos >= len(image):
            raise CpioError("no main archive")
        if image[pos:pos + 6] in (b"070701", b"070702"):
            entries, end, trailer = read_newc(image, pos)
            if not image[end:].strip(b"\0"):
                return Image(image[:pos], "none", image[pos:end], {**early, **entries},
                             trailer - pos)
            early.update(entries)
            pos = end
            continue
        main = decompress(image[pos:])
        entries, _, trailer = read_newc(main)
        return Image(image[:pos], method_of(image[pos:]), main, {**early, **entries}, trailer)
