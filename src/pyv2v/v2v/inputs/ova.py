"""`-i ova`: a VMware/VirtualBox export (OVA tar, zip, or an unpacked directory) as the source.

Steps, as the reference's input_ova.ml: open the archive (ova_archive.py), find the one OVF,
verify every manifest (`.mf`: `SHA1(name)= hex`, `SHA256(name)= hex`, also the spaced
`SHA1 (name) = hex` VirtualBox writes) unless `-io skip-manifest` (a pyv2v option: the
reference always verifies), parse the OVF (ovf.py), then describe each disk to qemu:
- a member of an uncompressed tar is read in place: qemu's raw driver with the member's
  offset and size over the tar (`json:{"file":{"driver":"raw","offset":…}}`), so nothing is
  unpacked (measured faster and simpler than nbdkit file+offset: no server process, and the
  overlay reads it directly);
- a gzip-compressed disk (ovf:compression="gzip") is decompressed to temporary space;
- a file of an unpacked directory (or of an extracted zip) is a plain path, checked by
  `probe_image` (extents/backing files outside the directory refused).
A disk inside a tar is checked the same way: no backing file, no data file, no text
descriptor (its extents would resolve next to the tar), a supported VMDK subformat.
"""

from __future__ import annotations

import json
import os
import posixpath
import re

from ... import log, process
from ...errors import V2VError
from ..types import Source, SourceCpu, SourceDisk, SourceNic, SourceRemovable
from . import vmdk
from .base import Input, InputOptions
from .disk import KNOWN_FORMATS, check_file, probe_image
from .ova_archive import Archive, DiskRef, open_ova
from .ovf import OvfMachine, parse_ovf

MF_RE = re.compile(r"^\s*(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)\s*$")
SNAPSHOT_RE = re.compile(r"\.(\d+)$")


def verify_manifests(ar: Archive, ovf_dir: str) -> int:
    """Check every .mf next to the OVF; returns how many files were verified."""
    checked = 0
    for mf in sorted(n for n in ar.files if n.lower().endswith(".mf")
                     and posixpath.dirname(n) == ovf_dir):
        text = ar.read_small(mf).decode("utf-8", "replace")
        for line in text.splitlines():
            if not line.strip():
                continue
            m = MF_RE.match(line)
            if not m:
                log.warning(f"{mf}: cannot parse manifest line {line[:80]!r} (ignored)")
                continue
            algo, name, want = m.group(1).lower(), m.group(2).strip(), m.group(3).lower()
            target = posixpath.normpath(posixpath.join(ovf_dir, name))
            if target not in ar.files:
                log.warning(f"manifest {mf} has a checksum for non-existent file {name} "
                            "(ignored)")
                continue
            got = ar.digest(target, algo)
            if got != want:
                raise V2VError(f"-i ova: corrupt OVA: the {algo.upper()} checksum of {name} "
                               f"does not match the manifest {mf} (expected {want}, "
                               f"actual {got})")
            checked += 1
    return checked


def resolve_href(ar: Archive, ovf_dir: str, href: str) -> str:
    """The archive name of a disk <File ovf:href> (or its newest VMware `.NNN` snapshot)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", href) or href.startswith("/"):
        raise V2VError(f"-i ova: the OVF names disk file {href[:80]!r}: only files inside "
                       "the OVA are allowed")
    name = posixpath.normpath(posixpath.join(ovf_dir, href))
    if name.startswith("../") or name == "..":
        raise V2VError(f"-i ova: the OVF names disk file {href[:80]!r} outside the OVA")
    if name in ar.files:
        return name
    snaps = sorted((int(m.group(1)), n) for n in ar.files
                   if n.startswith(name + ".") and (m := SNAPSHOT_RE.search(n))
                   and n == f"{name}.{m.group(1)}")
    if snaps:
        return snaps[-1][1]
    raise V2VError(f"-i ova: the OVF references file {href} which was not found in the OVA "
                   f"{ar.path}")


def tar_member_spec(ref: DiskRef) -> str:
    """qemu's view of a byte range of a file (raw driver, offset/size)."""
    assert ref.size is not None
    total = os.stat(ref.path).st_size
    size = min(-(-ref.size // 512) * 512, total - ref.offset)  # qemu wants 512-byte multiples
    return "json:" + json.dumps({"file": {"driver": "raw", "offset": ref.offset, "size": size,
                                          "file": {"driver": "file",
                                                   "filename": os.path.abspath(ref.path)}}},
                                separators=(",", ":"))


def probe_tar_member(ref: DiskRef, name: str) -> tuple[str, str, int]:
    """(location, format, virtual size) of a disk inside a tar, refusing what could name
    other files."""
    if ref.size is None or ref.size == 0:
        raise V2VError(f"-i ova: disk {name} is empty")
    if vmdk.is_text_descriptor(ref.path, ref.offset):
        raise V2VError(f"-i ova: disk {name} is a VMDK descriptor naming other files; unpack "
                       "the OVA into a directory and convert that")
    vmdk.check_subformat(ref.path, ref.offset, ref.size, what=name)
    spec = tar_member_spec(ref)
    res = process.run(["qemu-img", "info", "--output=json", "-U", spec], check=False,
                      timeout=60)
    if res.rc != 0:
        last = (res.err.strip().splitlines() or ["unknown error"])[-1]
        raise V2VError(f"-i ova: cannot read disk {name}: {last}")
    info = json.loads(res.out)
    data = (info.get("format-specific") or {}).get("data") or {}
    if info.get("backing-filename") or data.get("data-file"):
        raise V2VError(f"-i ova: disk {name} names a backing or data file: refused")
    fmt, size = str(info.get("format")), int(info.get("virtual-size") or 0)
    if fmt not in KNOWN_FORMATS:
        raise V2VError(f"-i ova: disk {name} has unsupported format {fmt}")
    if size <= 0:
        raise V2VError(f"-i ova: disk {name} has a virtual size of 0 bytes")
    return spec, fmt, size


def find_ovf(ar: Archive) -> str:
    ovfs = sorted(n for n in ar.files if n.lower().endswith(".ovf"))
    if not ovfs:
        raise V2VError(f"-i ova: no .ovf file found in {ar.path}")
    if len(ovfs) > 1:
        raise V2VError(f"-i ova: {ar.path} holds several OVF files ({', '.join(ovfs[:4])})")
    return ovfs[0]


class OvaInput(Input):
    name = "ova"
    description = "a VMware/VirtualBox OVA (tar, zip or unpacked directory)"
    io_options = {"skip-manifest": "do not verify the OVA's .mf manifest checksums"}

    def source(self, opts: InputOptions) -> Source:
        if len(opts.args) != 1:
            raise V2VError("-i ova: expecting one OVA file or directory name")
        path = opts.args[0]
        if not os.path.isdir(path):
            check_file(path, "OVA")
        ar = open_ova(path)
        ovf_name = find_ovf(ar)
        ovf_dir = posixpath.dirname(ovf_name)
        if "skip-manifest" in opts.extra:
            log.warning("-io skip-manifest: the OVA's manifest checksums are not verified")
        else:
            n = verify_manifests(ar, ovf_dir)
            log.debug(f"manifest: {n} file(s) verified")
        machine = parse_ovf(ar.read_small(ovf_name), what=ovf_name)
        if not machine.disks:
            raise V2VError(f"-i ova: the OVF {ovf_name} describes no disks")
        disks = tuple(self._disk(ar, ovf_dir, machine, i, opts) for i in range(len(machine.disks)))
        return _source(machine, disks, opts.name or machine.name or _name_from(path))

    def _disk(self, ar: Archive, ovf_dir: str, m: OvfMachine, i: int,
              opts: InputOptions) -> SourceDisk:
        d = m.disks[i]
        name = resolve_href(ar, ovf_dir, d.href)
        ref = ar.files[name]
        if d.compressed:
            loc = ar.gunzip(name)
            fmt, size = probe_image(loc, None, False)
        elif ar.kind == "tar":
            loc, fmt, size = probe_tar_member(ref, name)
        else:
            loc = ref.path
            if ar.kind == "directory" and not opts.allow_external_files:
                root = os.path.realpath(ar.path)
                if not os.path.realpath(loc).startswith(root.rstrip("/") + "/"):
                    raise V2VError(f"-i ova: disk {name} resolves outside {ar.path} (use "
                                   "--allow-external-files if you trust this OVA)")
            vmdk.check_subformat(loc, what=name)
            fmt, size = probe_image(loc, None, opts.allow_external_files)
        return SourceDisk(index=i, location=loc, format=fmt, size=size)


def _name_from(path: str) -> str:
    base = os.path.basename(os.path.normpath(path))
    return base.rsplit(".", 1)[0] if "." in base else base


def _source(m: OvfMachine, disks: tuple[SourceDisk, ...], name: str) -> Source:
    cpu = SourceCpu(sockets=m.vcpus // m.cores_per_socket, cores=m.cores_per_socket,
                    threads=1) if m.cores_per_socket else SourceCpu()
    return Source(
        name=name, hypervisor="virtualbox" if m.dialect == "virtualbox" else "vmware",
        memory=m.memory, vcpus=m.vcpus, disks=disks,
        nics=tuple(SourceNic(mac=n.mac, vnet=n.network, vnet_type=n.vnet_type, model=n.model)
                   for n in m.nics),
        removables=tuple(SourceRemovable(kind=r.kind) for r in m.removables),
        cpu=cpu, firmware=m.firmware, secure_boot=m.secure_boot, tpm=m.tpm,
        features=("acpi", "apic", "pae"))
