"""OVF descriptors (DMTF OVF 1.x as VMware and VirtualBox write them) → an `OvfMachine`.

Pure parsing, no file access beyond the text given: the OVF is untrusted XML and goes through
the same safe parser as libvirt XML (no entities, no DTD, no network; a DOCTYPE is refused).
Elements are matched by local name inside the hardware section, so the VMware (`vmw:`) and
VirtualBox (`vbox:`) dialects and exports with unusual prefixes read the same (ovf_xml.py).

What is read, as the reference converter reads it (input/OVF.ml), plus what it leaves out:
name; vCPUs (ResourceType 3) and vmw:CoresPerSocket; memory (ResourceType 4) in its
rasd:AllocationUnits ("byte * 2^20", "MegaBytes", "GigaBytes" …; MiB when absent); firmware
(vmw:Config firmware=efi|bios, or VirtualBox's <Firmware type="EFI"/>) and secure boot
(vmw:Config uefi.secureBoot.enabled / bootOptions.efiSecureBootEnabled); disks (ResourceType
17) through DiskSection to References, with their format (ovf:format URL) and gzip
compression; removables (14 floppy, 15/16 CD-ROM); NICs (ResourceType 10: rasd:Connection is
the network, rasd:Address or VirtualBox's <Adapter MACAddress> the MAC).

Disk order: the reference trusts document order.  We sort by controller kind as its VMX
reader does (SCSI, SATA, NVMe, IDE, then disks without a known controller), then by the
controller's bus number, then rasd:AddressOnParent, then document order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from ...errors import V2VError
from ...libvirt_xml import parse
from . import ovf_xml as x

OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1"
VMW_NS = "http://www.vmware.com/schema/ovf"
VBOX_NS = "http://www.virtualbox.org/ovf/machine"

CONTROLLERS = {5: "ide", 6: "scsi", 20: "sata"}
CONTROLLER_RANK = {"scsi": 0, "sata": 1, "nvme": 2, "ide": 3}
UNITS_RE = re.compile(r"^byte\s*\*\s*(\d+)\s*\^\s*(\d+)$", re.I)
NAMED_UNITS = {"byte": 1, "bytes": 1, "kilobytes": 2**10, "kb": 2**10, "megabytes": 2**20,
               "mb": 2**20, "gigabytes": 2**30, "gb": 2**30}
SECURE_BOOT_KEYS = ("uefi.secureBoot.enabled", "bootOptions.efiSecureBootEnabled")
MAX_COUNT = 4096


@dataclass(frozen=True)
class OvfDisk:
    href: str                  # the <File ovf:href>: a name inside the OVA
    compressed: bool           # ovf:compression="gzip"
    format: str | None         # "vmdk" (streamOptimized …), "raw", "qcow2" … from ovf:format
    subformat: str | None      # e.g. "streamOptimized" (the URL fragment)
    controller: str | None     # "scsi" | "sata" | "nvme" | "ide" | None
    address: int | None        # rasd:AddressOnParent


@dataclass(frozen=True)
class OvfRemovable:
    kind: str                  # "cdrom" | "floppy"
    controller: str | None
    slot: int | None


@dataclass(frozen=True)
class OvfNic:
    mac: str | None
    network: str
    vnet_type: str             # "bridge" when the OVF names a connection (as the reference)
    model: str | None


@dataclass(frozen=True)
class OvfMachine:
    name: str | None
    dialect: str               # "vmware" | "virtualbox" | "ovf"
    memory: int                # bytes
    vcpus: int
    cores_per_socket: int | None
    firmware: str              # "bios" | "uefi" | "unknown"
    secure_boot: bool
    disks: tuple[OvfDisk, ...]
    removables: tuple[OvfRemovable, ...]
    nics: tuple[OvfNic, ...]
    tpm: bool = False          # a vTPM item (vmware.vtpm) or VirtualBox <TrustedPlatformModule>


def memory_bytes(quantity: int, units: str | None) -> int:
    """rasd:VirtualQuantity in rasd:AllocationUnits → bytes (MiB when no unit is given)."""
    if not units:
        return quantity * 2**20
    u = units.strip()
    m = UNITS_RE.match(u)
    if m:
        base, exp = int(m.group(1)), int(m.group(2))
        if base not in (2, 10) or exp > 60:
            raise V2VError(f"OVF: unsupported memory AllocationUnits {u[:40]!r}")
        return quantity * base**exp
    if u.lower() in NAMED_UNITS:
        return quantity * NAMED_UNITS[u.lower()]
    raise V2VError(f"OVF: unsupported memory AllocationUnits {u[:40]!r}")


def _format(url: str | None) -> tuple[str | None, str | None]:
    """ovf:format URL → (qemu format, subformat)."""
    if not url:
        return None, None
    page, _, frag = url.partition("#")
    low = page.lower()
    for key, fmt in (("vmdk", "vmdk"), ("qcow", "qcow2"), ("vhdx", "vhdx"), ("vhd", "vpc"),
                     ("vdi", "vdi"), ("raw", "raw")):
        if key in low.rsplit("/", 1)[-1]:
            return fmt, frag or None
    return None, frag or None


def parse_ovf(text: bytes | str, what: str = "OVF") -> OvfMachine:
    """Parse an OVF document; a one-line V2VError for anything unusable."""
    root = parse(text, what=what)
    if x.local(root) != "Envelope":
        raise V2VError(f"{what}: not an OVF descriptor (root element <{x.local(root)}>)")
    vs = x.first(root, "VirtualSystem")
    if vs is None:
        vcol = x.first(root, "VirtualSystemCollection")
        vs = x.first(vcol, "VirtualSystem") if vcol is not None else None
    if vs is None:
        raise V2VError(f"{what}: no <VirtualSystem> in the OVF")
    hw = x.first(vs, "VirtualHardwareSection")
    if hw is None:
        raise V2VError(f"{what}: no <VirtualHardwareSection> in the OVF")
    items = x.kids(hw, "Item") + x.kids(hw, "StorageItem") + x.kids(hw, "EthernetPortItem")
    if len(items) > MAX_COUNT:
        raise V2VError(f"{what}: too many hardware items ({len(items)})")
    by_type: dict[int, list[etree._Element]] = {}
    by_id: dict[str, etree._Element] = {}
    for it in items:
        rt = x.number(x.text(it, "ResourceType"), "rasd:ResourceType")
        if rt is not None:
            by_type.setdefault(rt, []).append(it)
        iid = x.text(it, "InstanceID")
        if iid is not None:
            by_id[iid] = it
    vbox = vs.find(f"{{{VBOX_NS}}}Machine")
    system_type = " ".join(x.text(s, "VirtualSystemType") or "" for s in x.kids(hw, "System"))
    dialect = ("virtualbox" if vbox is not None or "virtualbox" in system_type.lower()
               else "vmware" if root.find(f".//{{{VMW_NS}}}*") is not None
               or "vmx-" in system_type else "ovf")

    name = x.text(vs, "Name") or x.attr(vs, "id")
    cpu = next(iter(by_type.get(3, [])), None)
    vcpus = (x.number(x.text(cpu, "VirtualQuantity"), "vCPU count")
             if cpu is not None else None) or 1
    if not 1 <= vcpus <= 4096:
        raise V2VError(f"{what}: unusable number of vCPUs {vcpus}")
    cps = x.number(x.text(cpu, "CoresPerSocket"), "vmw:CoresPerSocket") if cpu is not None else None
    if cps is not None and (cps <= 0 or vcpus % cps):
        cps = None  # as the reference: an invalid topology is ignored
    mem = next(iter(by_type.get(4, [])), None)
    memory = 2**30
    if mem is not None:
        q = x.number(x.text(mem, "VirtualQuantity"), "memory VirtualQuantity")
        if q is not None:
            memory = memory_bytes(q, x.text(mem, "AllocationUnits"))
    if memory <= 0:
        raise V2VError(f"{what}: unusable memory size {memory}")

    config = {(x.attr(c, "key") or ""): (x.attr(c, "value") or "") for c in x.kids(hw, "Config")}
    firmware = {"efi": "uefi", "bios": "bios"}.get(config.get("firmware", "").lower(), "unknown")
    if vbox is not None:
        fw = next((e for e in vbox.iter() if x.local(e) == "Firmware"), None)
        if fw is not None:
            firmware = "uefi" if (fw.get("type") or "").upper().startswith("EFI") else "bios"
        elif firmware == "unknown":
            firmware = "bios"
    secure = any(config.get(k, "").lower() == "true" for k in SECURE_BOOT_KEYS)
    tpm = config.get("vtpm.present", "").lower() == "true" or any(
        (x.text(it, "ResourceSubType") or "").lower() == "vmware.vtpm" for it in items)
    if vbox is not None:
        tpm = tpm or any(x.local(e) == "TrustedPlatformModule"
                         and (e.get("type") or "none").lower() != "none" for e in vbox.iter())

    disks = _disks(root, by_type.get(17, []), by_id, items, what)
    removables = tuple(
        OvfRemovable(kind="floppy" if x.number(x.text(it, "ResourceType"), "") == 14 else "cdrom",
                     controller=_controller(it, by_id),
                     slot=x.number(x.text(it, "AddressOnParent"), "rasd:AddressOnParent"))
        for it in items if x.number(x.text(it, "ResourceType"), "") in (14, 15, 16))
    return OvfMachine(name=name, dialect=dialect, memory=memory, vcpus=vcpus,
                      cores_per_socket=cps, firmware=firmware, secure_boot=secure,
                      disks=disks, removables=removables,
                      nics=_nics(by_type.get(10, []), vbox), tpm=tpm)


def _controller(item: etree._Element, by_id: dict[str, etree._Element]) -> str | None:
    parent = x.text(item, "Parent")
    ctl = by_id.get(parent) if parent is not None else None
    if ctl is None:
        return None
    kind = CONTROLLERS.get(x.number(x.text(ctl, "ResourceType"), "controller ResourceType") or 0)
    if "nvme" in (x.text(ctl, "ResourceSubType") or "").lower():
        kind = "nvme"
    return kind


def _disks(root: etree._Element, items: list[etree._Element],
           by_id: dict[str, etree._Element], all_items: list[etree._Element],
           what: str) -> tuple[OvfDisk, ...]:
    files = {}
    refs = x.first(root, "References")
    for fe in x.kids(refs, "File") if refs is not None else []:
        files[x.attr(fe, "id") or ""] = fe
    ds = x.first(root, "DiskSection")
    disk_defs = {(x.attr(d, "diskId") or ""): d for d in (x.kids(ds, "Disk") if ds is not None
                                                         else [])}
    keyed = []
    for n, it in enumerate(items):
        res = x.text(it, "HostResource") or ""
        m = re.match(r"^(?:ovf:)?/(disk|file)/(.+)$", res)
        if not m:
            raise V2VError(f"{what}: cannot parse disk rasd:HostResource {res[:60]!r}")
        fmt_url = None
        if m.group(1) == "disk":
            d = disk_defs.get(m.group(2))
            if d is None:
                raise V2VError(f"{what}: disk {m.group(2)!r} is not in the DiskSection")
            file_id = x.attr(d, "fileRef")
            if not file_id:
                raise V2VError(f"{what}: disk {m.group(2)!r} has no file (an empty disk is "
                               "not supported)")
            fmt_url = x.attr(d, "format")
        else:
            file_id = m.group(2)
        f = files.get(file_id)
        href = x.attr(f, "href") if f is not None else None
        if f is None or not href:
            raise V2VError(f"{what}: no <File ovf:href> for file id {file_id!r}")
        comp = (x.attr(f, "compression") or "identity").lower()
        if comp not in ("identity", "gzip"):
            raise V2VError(f"{what}: unsupported compression {comp[:20]!r} of {href}")
        if x.attr(f, "chunkSize"):
            raise V2VError(f"{what}: chunked disk files (ovf:chunkSize) are not supported: "
                           f"{href}")
        fmt, sub = _format(fmt_url)
        ctl = _controller(it, by_id)
        parent = by_id.get(x.text(it, "Parent") or "")
        bus = x.number(x.text(parent, "Address"), "controller rasd:Address") \
            if parent is not None else None
        addr = x.number(x.text(it, "AddressOnParent"), "rasd:AddressOnParent")
        disk = OvfDisk(href=href, compressed=comp == "gzip", format=fmt, subformat=sub,
                       controller=ctl, address=addr)
        keyed.append(((CONTROLLER_RANK.get(ctl or "", 4), bus if bus is not None else -1,
                       addr if addr is not None else -1, n), disk))
    keyed.sort(key=lambda kv: kv[0])
    return tuple(d for _, d in keyed)


def _vbox_macs(vbox: etree._Element | None) -> list[str]:
    if vbox is None:
        return []
    macs = []
    for ad in (e for e in vbox.iter() if x.local(e) == "Adapter"):
        if (ad.get("enabled") or "true").lower() != "true":
            continue
        raw = re.sub(r"[^0-9A-Fa-f]", "", ad.get("MACAddress") or "")
        macs.append(":".join(raw[i:i + 2] for i in range(0, 12, 2)).lower()
                    if len(raw) == 12 else "")
    return macs


def _nics(items: list[etree._Element], vbox: etree._Element | None) -> tuple[OvfNic, ...]:
    vmacs = _vbox_macs(vbox)
    nics = []
    for i, it in enumerate(items):
        conn = x.text(it, "Connection")
        mac = x.text(it, "Address") or (vmacs[i] if i < len(vmacs) else "") or None
        if mac and not re.fullmatch(r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}", mac):
            mac = None  # not a MAC (some exports put other things there)
        model = x.text(it, "ResourceSubType")
        nics.append(OvfNic(mac=mac.replace("-", ":").lower() if mac else None,
                           network=conn or f"eth{i}",
                           vnet_type="bridge" if conn else "network",
                           model=model.lower() if model else None))
    return tuple(nics)
