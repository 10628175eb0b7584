"""Raw on-disk edits of a phony guest's volumes (through a libguestfs handle, never the host):
the NTFS "volume is dirty" flag, the BitLocker volume header.

NTFS: the boot sector gives the MFT's cluster and record size; MFT record 3 is $Volume, whose
$VOLUME_INFORMATION attribute (type 0x70, resident) holds the volume flags (0x0001 = dirty, what
Windows sets after an unclean shutdown and `fsutil dirty query` reports).  MFT records carry an
update sequence array: the last two bytes of each 512-byte sector live in the array, so reads
undo the fixup and a write that touches such a position must go to the array instead.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

VOLUME_IS_DIRTY = 0x0001
BITLOCKER_GUID = uuid.UUID("4967d63b-2e29-4ad8-8399-f6a339e3d001")


def _mft_record3(g: Any, dev: str) -> tuple[tuple[int, int], int, int]:
    """(byte offsets of $Volume's record in $MFT and in $MFTMirr, record size, bytes/sector).
    $MFTMirr holds a copy of records 0-3; ntfs-3g refuses a volume whose copies differ."""
    boot: bytes = g.pread_device(dev, 512, 0)
    if boot[3:11] != b"NTFS    ":
        raise ValueError(f"{dev} is not NTFS")
    bps, spc = struct.unpack_from("<HB", boot, 0x0B)
    mft_lcn, mirr_lcn = struct.unpack_from("<qq", boot, 0x30)
    cpr = struct.unpack_from("<b", boot, 0x40)[0]
    cluster = bps * spc
    rec_size = cluster * cpr if cpr > 0 else 1 << -cpr
    return (mft_lcn * cluster + 3 * rec_size, mirr_lcn * cluster + 3 * rec_size), rec_size, bps


def set_ntfs_dirty(g: Any, dev: str) -> None:
    """Set VOLUME_IS_DIRTY in the NTFS volume `dev` (unmounted)."""
    (off, mirror), size, bps = _mft_record3(g, dev)
    raw = bytearray(g.pread_device(dev, size, off))
    if raw[:4] != b"FILE":
        raise ValueError("MFT record 3 is not a FILE record")
    usa_ofs, usa_count = struct.unpack_from("<HH", raw, 4)
    rec = bytearray(raw)
    for i in range(1, usa_count):  # undo the fixups
        rec[i * bps - 2 : i * bps] = raw[usa_ofs + 2 * i : usa_ofs + 2 * i + 2]
    pos = struct.unpack_from("<H", rec, 0x14)[0]
    while pos + 8 <= size:
        atype, alen = struct.unpack_from("<II", rec, pos)
        if atype == 0xFFFFFFFF or alen == 0:
            break
        if atype == 0x70:
            value_ofs = struct.unpack_from("<H", rec, pos + 0x14)[0]
            flags_at = pos + value_ofs + 10
            flags = struct.unpack_from("<H", rec, flags_at)[0] | VOLUME_IS_DIRTY
            for byte_at, byte in ((flags_at, flags & 0xFF), (flags_at + 1, flags >> 8)):
                if byte_at % bps >= bps - 2:  # lives in the update sequence array
                    i = byte_at // bps + 1
                    raw[usa_ofs + 2 * i + byte_at % bps - (bps - 2)] = byte
                else:
                    raw[byte_at] = byte
            for at in (off, mirror):
                g.pwrite_device(dev, bytes(raw), at)
            return
        pos += alen
    raise ValueError("no $VOLUME_INFORMATION in $Volume")


BITLOCKER_METADATA_OFFSETS = (0x100000, 0x200000, 0x300000)  # as in bitlocker_header()


def bitlocker_metadata_block() -> bytes:
    """An FVE metadata block as blkid checks it at each offset the header names: the 64-byte
    block header ("-FVE-FS-", size, version 2) and a 48-byte metadata header with no entries."""
    block = bytearray(112)
    block[0:8] = b"-FVE-FS-"
    struct.pack_into("<HH", block, 8, 64, 2)  # block header size, version
    struct.pack_into("<IIII", block, 64, 48, 1, 48, 48)  # metadata size, version, hdr, copy
    return bytes(block)


def bitlocker_header() -> bytes:
    """The first sector of a BitLocker (Windows 7+) volume: "-FVE-FS-" OEM id, a BPB, the FVE
    GUID at 0xA0 and the 0x55AA signature (what blkid and Windows probe)."""
    sector = bytearray(512)
    sector[0:3] = b"\xeb\x58\x90"
    sector[3:11] = b"-FVE-FS-"
    struct.pack_into("<HBH", sector, 0x0B, 512, 8, 0)  # bytes/sector, sec/cluster
    struct.pack_into("<B", sector, 0x15, 0xF8)  # media descriptor
    struct.pack_into("<HHI", sector, 0x18, 63, 255, 2048)  # geometry, hidden sectors
    struct.pack_into("<Q", sector, 0x38, 0x0000000000100000)  # FVE metadata block 1 offset
    sector[0x47:0x52] = b"NO NAME    "
    sector[0x52:0x5A] = b"FAT32   "
    sector[0xA0:0xB0] = BITLOCKER_GUID.bytes_le
    struct.pack_into("<QQQ", sector, 0xB0, 0x100000, 0x200000, 0x300000)
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)
