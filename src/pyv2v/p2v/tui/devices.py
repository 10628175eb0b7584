"""What the conversion screen shows about disks and NICs: size, model, serial, link state.

hardware.py decides WHICH devices exist; this module only reads display details from sysfs
(under a `root` prefix, for tests).  Disks given as paths (--disk IMAGE) show the file size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

UNITS = ("", "K", "M", "G", "T", "P")


@dataclass(frozen=True)
class DiskInfo:
    name: str
    size: int | None
    model: str
    serial: str


@dataclass(frozen=True)
class NicInfo:
    name: str
    mac: str
    link: str  # up | down | unknown


def _read(root: str, path: str) -> str:
    try:
        with open(os.path.join(root, path.lstrip("/")), errors="replace") as f:
            return " ".join(f.read().split())
    except OSError:
        return ""


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in UNITS:
        if value < 1024 or unit == UNITS[-1]:
            return f"{value:.0f}{unit}" if not unit else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def disk_info(disk: str, root: str = "/") -> DiskInfo:
    """Size/model/serial of `disk` (a /sys/block name like sda or cciss/c0d0, or a path)."""
    name = disk
    if disk.startswith("/") and not disk.startswith("/dev/"):
        try:
            size: int | None = os.stat(os.path.join(root, disk.lstrip("/"))).st_size
        except OSError:
            size = None
        return DiskInfo(disk, size, "disk image", "")
    name = disk.removeprefix("/dev/")
    block = f"/sys/block/{name.replace('/', '!')}"
    sectors = _read(root, f"{block}/size")
    size = int(sectors) * 512 if sectors.isdigit() else None
    model = _read(root, f"{block}/device/model")
    serial = _read(root, f"{block}/device/serial") or _read(root, f"{block}/serial")
    return DiskInfo(disk, size, model, serial)


def nic_info(nic: str, macs: dict[str, str], root: str = "/") -> NicInfo:
    state = _read(root, f"/sys/class/net/{nic}/operstate") or "unknown"
    if state not in ("up", "down"):
        carrier = _read(root, f"/sys/class/net/{nic}/carrier")
        state = {"1": "up", "0": "down"}.get(carrier, "unknown")
    return NicInfo(nic, macs.get(nic) or _read(root, f"/sys/class/net/{nic}/address"), state)
