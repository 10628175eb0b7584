"""VMDK facts read before qemu opens an image: the subformat (createType) and whether a file is a
text descriptor, for a file or a byte range of one (a disk inside an OVA's tar).

A VMDK is untrusted input.  Its createType decides what qemu will open: we accept the
subformats qemu reads and that name no device (monolithicSparse, streamOptimized,
monolithicFlat, twoGbMaxExtent*, vmfs, vmfsSparse, vmfsThin, seSparse) and refuse the rest
(raw device mappings, fullDevice/partitionedDevice …) with one line naming the file.
"""

from __future__ import annotations

import re
import struct

from ...errors import V2VError

SUPPORTED = ("monolithicSparse", "streamOptimized", "monolithicFlat", "twoGbMaxExtentSparse",
             "twoGbMaxExtentFlat", "vmfs", "vmfsSparse", "vmfsThin", "seSparse")
DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
SPARSE_MAGIC = b"KDMV"
CREATE_TYPE_RE = re.compile(rb'^\s*createType\s*=\s*"?([A-Za-z0-9_]+)"?', re.M)
MAX_DESCRIPTOR = 1 << 20


def _read(path: str, offset: int, size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except OSError as e:
        raise V2VError(f"cannot read {path}: {e.strerror}") from e


def descriptor_text(path: str, base: int = 0, length: int | None = None) -> bytes | None:
    """The descriptor of a VMDK at byte `base` of `path` (text file or embedded in a sparse
    header); None if this is not a VMDK."""
    head = _read(path, base, 512)
    if head.startswith(DESCRIPTOR_MAGIC):
        return _read(path, base, min(MAX_DESCRIPTOR, length or MAX_DESCRIPTOR))
    if head.startswith(SPARSE_MAGIC) and len(head) >= 44:
        desc_off, desc_size = struct.unpack_from("<QQ", head, 28)
        if not desc_off or not desc_size or desc_size * 512 > MAX_DESCRIPTOR:
            return b""
        if length is not None and (desc_off + desc_size) * 512 > length:
            return b""
        return _read(path, base + desc_off * 512, desc_size * 512)
    return None


def is_text_descriptor(path: str, base: int = 0) -> bool:
    return _read(path, base, len(DESCRIPTOR_MAGIC)) == DESCRIPTOR_MAGIC


def check_subformat(path: str, base: int = 0, length: int | None = None,
                    what: str | None = None) -> str | None:
    """The createType of the VMDK at `path`[base:], refused unless SUPPORTED; None if not a
    VMDK (or it has no readable descriptor: qemu then decides)."""
    desc = descriptor_text(path, base, length)
    if desc is None:
        return None
    m = CREATE_TYPE_RE.search(desc.split(b"\0", 1)[0])
    if not m:
        return None
    kind = m.group(1).decode("ascii")
    if kind not in SUPPORTED:
        raise V2VError(f"unsupported VMDK subformat {kind!r} in {what or path} "
                       f"(supported: {', '.join(SUPPORTED)})")
    return kind
