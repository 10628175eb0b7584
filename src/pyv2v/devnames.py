"""Disk device names, defined once for both sides: drive letters and bus prefixes.

``drive_letters(0) == "a"``, ``drive_letters(26) == "aa"`` (the kernel's and libvirt's sd/vd
naming); `BUS_PREFIX` maps a bus (as `GuestCaps.block_bus` and libvirt name it) to the prefix
the guest kernel and libvirt's ``<target dev=…>`` use on it.  The Linux converter rewrites fstab
and the bootloader with `target_dev`, and records what it wrote; outputs read those records, so
the names in the guest and in the domain XML can never disagree.
"""

from __future__ import annotations

BUS_PREFIX: dict[str, str] = {
    "virtio-blk": "vd",
    "virtio-scsi": "sd",
    "scsi": "sd",
    "sata": "sd",
    "ide": "hd",
    "fdc": "fd",
}


def drive_letters(index: int) -> str:
    """0 → "a", 25 → "z", 26 → "aa"."""
    if index < 0:
        raise ValueError(f"negative drive index {index}")
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(ord("a") + rem) + name
    return name


def drive_index(letters: str) -> int:
    """The inverse of `drive_letters`: "a" → 0, "aa" → 26."""
    if not letters or not all("a" <= c <= "z" for c in letters):
        raise ValueError(f"not drive letters: {letters!r}")
    n = 0
    for c in letters:
        n = n * 26 + (ord(c) - ord("a") + 1)
    return n - 1


def target_dev(bus: str, index: int) -> str:
    """The name of disk `index` on `bus`: ("virtio-blk", 1) → "vdb"."""
    try:
        return BUS_PREFIX[bus] + drive_letters(index)
    except KeyError:
        raise ValueError(f"unknown disk bus {bus!r}") from None
