"""Block device names: map the source's disk names to the target's and rewrite them in text.

A Linux guest may name its disks in any scheme its source hardware used: ``/dev/sdX`` (SCSI,
SATA), ``/dev/hdX`` (old IDE), ``/dev/xvdX`` (Xen), ``/dev/vdX`` (virtio-blk),
``/dev/cciss/cXdY`` (HP Smart Array) or ``/dev/nvmeXnY`` (NVMe), each with partitions.  On the
target every disk is on one bus, in the order of the source disks: ``/dev/vdX`` on virtio-blk,
``/dev/sdX`` on virtio-scsi.  A source name's disk index is its letter (``sdc`` → 2), its
cciss drive number or its NVMe controller number, as virt-v2v does.

Rewriting is textual and token-aware (``/dev/sda1`` and ``/dev/sda10`` are different names; a
``/dev/sda`` inside ``/dev/disk/by-id/…`` is not touched), so configuration files keep their
comments and layout.  Names made for the target are fixed points of the rewrite, so running it
twice is harmless.  `DeviceMapper.target_devs(n)` is the record of the names written, one per
disk index, which the converter reports in `GuestCaps.target_devs` for the outputs to use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ....devnames import drive_index, target_dev
from ....errors import V2VError

TARGET_BUSES = ("virtio-blk", "virtio-scsi")  # the buses a converted Linux guest boots from

DEVICE_RE = re.compile(
    r"(?<![\w/.-])/dev/(?:"
    r"(?P<pfx>sd|hd|xvd|vd)(?P<letters>[a-z]{1,3})(?P<part>\d*)"
    r"|cciss/c(?P<cc>\d+)d(?P<cd>\d+)(?:p(?P<cp>\d+))?"
    r"|nvme(?P<nc>\d+)n(?P<nn>\d+)(?:p(?P<np>\d+))?"
    r")(?![\w])"
)


@dataclass(frozen=True)
class SourceDevice:
    """One parsed source device name."""

    scheme: str        # "sd" | "hd" | "xvd" | "vd" | "cciss" | "nvme"
    index: int         # disk index on the target (order of the source disks)
    partition: str     # "" or the partition number


def parse(m: re.Match[str]) -> SourceDevice:
    if m.group("pfx"):
        return SourceDevice(m.group("pfx"), drive_index(m.group("letters")), m.group("part"))
    if m.group("cd") is not None:
        return SourceDevice("cciss", int(m.group("cd")), m.group("cp") or "")
    # nvmeXnY: one namespace per controller is the norm; extra namespaces follow it.
    index = int(m.group("nc")) + int(m.group("nn")) - 1
    return SourceDevice("nvme", index, m.group("np") or "")


class DeviceMapper:
    """Rewrites source device names to target names for one target block bus."""

    def __init__(self, block_bus: str) -> None:
        if block_bus not in TARGET_BUSES:
            raise V2VError(f"unsupported target block bus for Linux guests: {block_bus}")
        self.bus = block_bus
        self.seen: dict[str, str] = {}   # every rewrite made, old → new (for the log)
        self.schemes: set[str] = set()

    def disk_name(self, index: int) -> str:
        """The target name of disk `index` ("vda"), as written into the guest."""
        return target_dev(self.bus, index)

    def target_name(self, dev: SourceDevice) -> str:
        return f"/dev/{self.disk_name(dev.index)}{dev.partition}"

    def target_devs(self, count: int) -> tuple[str, ...]:
        """The names of the target's disks 0 … count-1 (the record outputs read)."""
        return tuple(self.disk_name(i) for i in range(count))

    def rewrite(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            dev = parse(m)
            new = self.target_name(dev)
            self.schemes.add(dev.scheme)
            if new != m.group(0):
                self.seen[m.group(0)] = new
            return new

        return DEVICE_RE.sub(sub, text)

    def leftovers(self, text: str) -> list[str]:
        """Device names in `text` that are not target names (should be none after rewrite)."""
        return [m.group(0) for m in DEVICE_RE.finditer(text)
                if self.target_name(parse(m)) != m.group(0)]

    def ambiguous(self) -> bool:
        """True if more than one naming scheme was rewritten (disk order is then a guess)."""
        return len(self.schemes) > 1
