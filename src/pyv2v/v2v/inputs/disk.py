"""`-i disk`: local disk images (raw, qcow2, vmdk …) as the source, and the image checks
every local input uses (`probe_image`).

A disk image is untrusted input.  Before qemu opens anything, `probe_image` refuses what is not
a disk (a FIFO or socket would block qemu-img for a minute; a character device is not a disk),
an empty file, and an image that names files outside its own directory: a backing file (any
depth), a qcow2 external data file or a VMDK extent resolving (symlinks included) outside the
directory, or a `json:`/protocol (`nbd:`, `http:` …) backing — otherwise a host file such as
/etc/shadow would be read into the output.  The chain is walked one image at a time with
`qemu-img info` (which opens no backing file), so nothing is opened before it was checked.
`--allow-external-files` lifts the directory/protocol rule for images the user trusts.
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any

from ... import process
from ...errors import V2VError
from ..types import Source, SourceDisk, SourceNic
from .base import Input, InputOptions

KNOWN_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed")
MAX_CHAIN = 16
PROTOCOL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # json:{…}, nbd:…, http://…, file:…
EXTENT_RE = re.compile(r'^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]*)"', re.M)
ALLOW_HINT = " (use --allow-external-files if you trust this image)"


def check_file(path: str, what: str = "disk image") -> os.stat_result:
    """A readable regular file or block device with data; never opens it (no FIFO hang)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise V2VError(f"{what} not found: {path}") from None
    except OSError as e:
        raise V2VError(f"cannot access {what} {path}: {e.strerror}") from None
    kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
            else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "a character device" if stat.S_ISCHR(st.st_mode) else None)
    if kind:
        raise V2VError(f"{what} is {kind}, not a disk image: {path}")
    if not os.access(path, os.R_OK):
        raise V2VError(f"{what} is not readable: {path}")
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise V2VError(f"{what} is empty (0 bytes): {path}")
    return st


def _qemu_img_info(path: str, fmt: str | None) -> dict[str, Any]:
    argv = ["qemu-img", "info", "--output=json", "-U"] + (["-f", fmt] if fmt else []) + [path]
    res = process.run(argv, check=False, timeout=60)
    if res.rc != 0:
        last = (res.err.strip().splitlines() or ["unknown error"])[-1]
        raise V2VError(f"cannot read disk image {path}: {last}")
    info = json.loads(res.out)
    if not isinstance(info, dict):
        raise V2VError(f"cannot read disk image {path}: unexpected qemu-img output")
    return info


class _Confinement:
    """Files an image may name: inside its directory (as given, or with symlinks resolved)."""

    def __init__(self, image: str, allow: bool) -> None:
        self.image = image
        self.allow = allow
        self.roots = {os.path.realpath(os.path.dirname(os.path.abspath(image))),
                      os.path.dirname(os.path.realpath(image))}

    def check(self, name: str, base_dir: str, what: str) -> str | None:
        """The path `name` resolves to, checked; None for a pseudo-name when allowed."""
        if PROTOCOL_RE.match(name):
            if self.allow:
                return None
            raise V2VError(f"disk image {self.image}: refusing {what} {name[:80]!r}: json: and "
                           "protocol file names are not allowed" + ALLOW_HINT)
        path = os.path.join(base_dir, name)
        real = os.path.realpath(path)
        if not self.allow and not any(real == r or real.startswith(r.rstrip("/") + "/")
                                      for r in self.roots):
            raise V2VError(f"disk image {self.image}: refusing {what} {name} (resolves to "
                           f"{real}, outside {os.path.dirname(os.path.abspath(self.image))})"
                           + ALLOW_HINT)
        check_file(path, what)
        return path


def _descriptor_extents(path: str) -> list[str]:
    """Extent file names of a VMDK text descriptor (read before qemu opens the extents)."""
    with open(path, "rb") as f:  # a regular file or block device: check_file ran
        head = f.read(64 * 1024)
    if not head.startswith(b"# Disk DescriptorFile"):
        return []
    return EXTENT_RE.findall(head.decode("utf-8", "replace"))


def _check_references(path: str, info: dict[str, Any], conf: _Confinement) -> None:
    """Extents and external data files of one image of the chain."""
    base_dir = os.path.dirname(os.path.abspath(path))
    data = (info.get("format-specific") or {}).get("data") or {}
    for ext in data.get("extents") or []:
        name = str(ext.get("filename", ""))
        if name and os.path.realpath(os.path.join(base_dir, name)) != os.path.realpath(path):
            conf.check(name, base_dir, "VMDK extent")
    if data.get("data-file"):
        conf.check(str(data["data-file"]), base_dir, "qcow2 data file")


def probe_image(path: str, fmt: str | None,
                allow_external: bool = False) -> tuple[str, int]:
    """Format and virtual size of a local image, its whole chain checked (read-only)."""
    st = check_file(path)
    conf = _Confinement(path, allow_external)
    if not stat.S_ISBLK(st.st_mode) and fmt in (None, "vmdk"):
        for name in _descriptor_extents(path):
            conf.check(name, os.path.dirname(os.path.abspath(path)), "VMDK extent")
    info = _qemu_img_info(path, fmt)
    top_format, size = str(info["format"]), int(info["virtual-size"])
    if size <= 0:
        raise V2VError(f"disk image has a virtual size of 0 bytes: {path}")
    seen = {os.path.realpath(path)}
    current = path
    for _ in range(MAX_CHAIN):
        _check_references(current, info, conf)
        backing = info.get("backing-filename")
        if not backing:
            return top_format, size
        base_dir = os.path.dirname(os.path.abspath(current))
        full = str(info.get("full-backing-filename") or backing)
        nxt = conf.check(full if not PROTOCOL_RE.match(str(backing)) else str(backing),
                         base_dir, "backing file")
        if nxt is None:  # an allowed pseudo-name: qemu resolves it, nothing to walk
            return top_format, size
        if os.path.realpath(nxt) in seen:
            raise V2VError(f"disk image {path}: backing chain loops at {nxt}")
        seen.add(os.path.realpath(nxt))
        bfmt = info.get("backing-filename-format")
        if not stat.S_ISBLK(os.stat(nxt).st_mode) and bfmt in (None, "vmdk"):
            for name in _descriptor_extents(nxt):
                conf.check(name, os.path.dirname(os.path.abspath(nxt)), "VMDK extent")
        info = _qemu_img_info(nxt, str(bfmt) if bfmt else None)
        current = nxt
    raise V2VError(f"disk image {path}: backing chain longer than {MAX_CHAIN} images")


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
            fmt, size = probe_image(path, opts.input_format, opts.allow_external_files)
            disks.append(SourceDisk(index=i, location=os.path.abspath(path), format=fmt,
                                    size=size))
        base = os.path.basename(opts.args[0])
        name = opts.name or (base.rsplit(".", 1)[0] if "." in base else base)
        # Like virt-v2v: a disk image carries no metadata, so assume one NIC on "default".
        return Source(name=name, hypervisor="unknown", memory=2 * 1024**3, vcpus=1,
                      disks=tuple(disks), nics=(SourceNic(mac=None, vnet="default"),),
                      features=("acpi", "apic", "pae"))
