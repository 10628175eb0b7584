"""VMware .vmx files → a `VmxMachine` (pure parsing: text in, facts out).

A VMX is lines of `key = "value"` (keys case-insensitive, `|XX` hex escapes in values, `#`
comments).  A device namespace whose `.present` is FALSE is absent (a controller's too).
What is read, as the reference's parse_domain_from_vmx.ml: displayName, memsize (MiB;
default 32 MiB as VMware's), numvcpus, cpuid.coresPerSocket, firmware (efi → UEFI, else
BIOS), uefi.secureBoot.enabled; hard disks on scsiN:M, sataN:M, nvmeN:M and ideN:M — in
that controller order (the reference's SCSI, NVMe, IDE with SATA after SCSI), then by N, then
by M — with their fileName; CD-ROMs (any bus) and floppies; ethernetN (by N): MAC
(generatedAddress, or address when static), networkName (else "ethernetN"), connectionType
bridged → a bridge, virtualDev as the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import V2VError

LINE_RE = re.compile(r'^\s*([A-Za-z0-9_.:\-]+)\s*=\s*(?:"([^"]*)"|(\S*))\s*$')
DISK_NS_RE = re.compile(r"^(scsi|sata|nvme|ide)(\d+):(\d+)$")
ETH_NS_RE = re.compile(r"^ethernet(\d+)$")
BUS_ORDER = {"scsi": 0, "sata": 1, "nvme": 2, "ide": 3}
DISK_TYPES = {None, "disk", "plaindisk", "rawdisk", "scsi-harddisk", "ata-harddisk"}
CDROM_TYPES = {"cdrom-image", "cdrom-raw", "atapi-cdrom"}
MAX_VMX = 4 << 20
MAC_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")


@dataclass(frozen=True)
class VmxDisk:
    bus: str          # "scsi" | "sata" | "nvme" | "ide"
    controller: int
    target: int
    filename: str     # as written in the VMX (relative to the VMX's directory, or absolute)


@dataclass(frozen=True)
class VmxNic:
    port: int
    mac: str | None
    network: str
    vnet_type: str
    model: str | None


@dataclass(frozen=True)
class VmxMachine:
    name: str | None
    memory: int
    vcpus: int
    cores_per_socket: int | None
    firmware: str
    secure_boot: bool
    disks: tuple[VmxDisk, ...]
    removables: tuple[str, ...]   # "cdrom" | "floppy", in bus order
    nics: tuple[VmxNic, ...]
    tpm: bool = False             # vtpm.present = "TRUE"


def _unescape(v: str) -> str:
    return re.sub(r"\|([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), v)


def parse_vmx_text(text: str, what: str = "VMX") -> dict[str, str]:
    """key (lower case) → value; a line that is not `key = value` is a one-line error."""
    if len(text) > MAX_VMX:
        raise V2VError(f"{what}: too large for a VMX file ({len(text)} bytes)")
    if "\0" in text:
        raise V2VError(f"{what}: not a VMX file (binary data)")
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = LINE_RE.match(s)
        if not m:
            raise V2VError(f"{what} line {n}: cannot parse {s[:60]!r} (expected key = \"value\")")
        out[m.group(1).lower()] = _unescape(m.group(2) if m.group(2) is not None
                                           else m.group(3))
    return out


def _present(vmx: dict[str, str], ns: str) -> bool:
    return vmx.get(f"{ns}.present", "true").strip().lower() not in ("false", "0", "no")


def _int(vmx: dict[str, str], key: str, what: str) -> int | None:
    v = vmx.get(key)
    if v is None or not v.strip():
        return None
    try:
        return int(v.strip())
    except ValueError:
        raise V2VError(f"{what}: {key} is not a number: {v[:40]!r}") from None


def machine_from_vmx(vmx: dict[str, str], what: str = "VMX") -> VmxMachine:
    namespaces = {k.split(".", 1)[0] for k in vmx if "." in k}
    disks, removables = [], []
    for ns in namespaces:
        m = DISK_NS_RE.match(ns)
        if not m or not _present(vmx, ns) or not _present(vmx, f"{m.group(1)}{m.group(2)}"):
            continue
        dtype = vmx.get(f"{ns}.devicetype")
        dtype = dtype.strip().lower() if dtype is not None else None
        key = (BUS_ORDER[m.group(1)], int(m.group(2)), int(m.group(3)))
        if dtype in CDROM_TYPES:
            removables.append((key, "cdrom"))
        elif dtype in DISK_TYPES and vmx.get(f"{ns}.filename"):
            disks.append((key, VmxDisk(m.group(1), int(m.group(2)), int(m.group(3)),
                                       vmx[f"{ns}.filename"])))
    for ns in namespaces:
        if re.fullmatch(r"floppy\d+", ns) and _present(vmx, ns):
            removables.append(((9, int(ns[6:]), 0), "floppy"))
    disks.sort(key=lambda kv: kv[0])
    removables.sort(key=lambda kv: kv[0])

    nics = []
    for ns in namespaces:
        m = ETH_NS_RE.match(ns)
        if not m or not _present(vmx, ns):
            continue
        static = vmx.get(f"{ns}.addresstype", "").lower() == "static"
        mac = (vmx.get(f"{ns}.address") if static else None) or \
            vmx.get(f"{ns}.generatedaddress") or vmx.get(f"{ns}.address")
        mac = mac.replace("-", ":").lower() if mac and MAC_RE.match(mac.strip()) else None
        model = vmx.get(f"{ns}.virtualdev")
        bridged = vmx.get(f"{ns}.connectiontype", "").lower() == "bridged"
        nics.append(VmxNic(port=int(m.group(1)), mac=mac,
                           network=vmx.get(f"{ns}.networkname") or ns,
                           vnet_type="bridge" if bridged else "network",
                           model=model.lower() if model else None))
    nics.sort(key=lambda n: n.port)

    vcpus = _int(vmx, "numvcpus", what) or 1
    if not 1 <= vcpus <= 4096:
        raise V2VError(f"{what}: unusable numvcpus {vcpus}")
    cps = _int(vmx, "cpuid.corespersocket", what)
    if cps is not None and (cps <= 0 or vcpus // cps <= 0):
        cps = None  # as the reference: an impossible topology is ignored
    mem_mib = _int(vmx, "memsize", what) or 32
    if not 0 < mem_mib <= 1 << 24:
        raise V2VError(f"{what}: unusable memsize {mem_mib}")
    fw = vmx.get("firmware", "bios").strip().lower()
    return VmxMachine(
        name=vmx.get("displayname") or None, memory=mem_mib * 2**20, vcpus=vcpus,
        cores_per_socket=cps, firmware="uefi" if fw == "efi" else "bios",
        secure_boot=vmx.get("uefi.secureboot.enabled", "").lower() == "true",
        disks=tuple(d for _, d in disks), removables=tuple(r for _, r in removables),
        nics=tuple(nics), tpm=vmx.get("vtpm.present", "").strip().lower() == "true")
