"""`-i disk`: one or more local disk images (raw, qcow2, vmdk …) as the source."""

from __future__ import annotations

import json
import os

from ... import process
from ...errors import V2VError
from ..types import Source, SourceDisk, SourceNic
from .base import Input, InputOptions

KNOWN_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed")


def probe_image(path: str, fmt: str | None) -> tuple[str, int]:
    """The format and virtual size of a local image, checked with qemu-img (read-only)."""
    if not os.path.exists(path):
        raise V2VError(f"disk image not found: {path}")
    if os.path.isdir(path):
        raise V2VError(f"disk image is a directory: {path}")
    if not os.access(path, os.R_OK):
        raise V2VError(f"disk image is not readable: {path}")
    argv = ["qemu-img", "info", "--output=json", "-U"]
    if fmt:
        argv += ["-f", fmt]
    argv.append(path)
    res = process.run(argv, check=False, timeout=60)
    if res.rc != 0:
        last = (res.err.strip().splitlines() or ["unknown error"])[-1]
        raise V2VError(f"cannot read disk image {path}: {last}")
    info = json.loads(res.out)
    return str(info["format"]), int(info["virtual-size"])


class DiskInput(Input):
    name = "disk"
    description = "local disk image files"

    def source(self, opts: InputOptions) -> Source:
        if not opts.args:
            raise V2VError("-i disk: expecting one or more disk image file names")
        if opts.input_format and opts.input_format not in KNOWN_FORMATS:
            raise V2VError(f"-if {opts.input_format}: unknown disk format")
        disks = []
        for i, path in enumerate(opts.args):
            fmt, size = probe_image(path, opts.input_format)
            disks.append(SourceDisk(index=i, location=os.path.abspath(path), format=fmt,
                                    size=size))
        base = os.path.basename(opts.args[0])
        name = opts.name or (base.rsplit(".", 1)[0] if "." in base else base)
        # Like virt-v2v: a disk image carries no metadata, so assume one NIC on "default".
        return Source(name=name, hypervisor="unknown", memory=2 * 1024**3, vcpus=1,
                      disks=tuple(disks), nics=(SourceNic(mac=None, vnet="default"),),
                      features=("acpi", "apic", "pae"))
