"""The data that flows between pipeline stages, as frozen dataclasses.

`Source` is what an input found (disks, NICs, CPUs, memory, firmware); `Inspect` is what
libguestfs inspection found inside the guest; `GuestCaps` is what the converter made the guest
able to use (buses, machine type, firmware, the device names it wrote into the guest);
`TargetDisk`/`TargetMeta` describe what the output writes.  `Disk` is one disk's record through
the whole pipeline (source → overlay → destination → target), the only thing stages pass along
per disk.  Stages never share mutable state beyond these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .outputs.base import Destination


@dataclass(frozen=True)
class SourceDisk:
    index: int
    location: str            # a local path, or an NBD URI (nbd://localhost:PORT)
    format: str | None       # "raw", "qcow2", "vmdk" … or None to probe
    target_dev: str | None = None  # the source's name for it ("sda"), if known
    size: int | None = None  # virtual size in bytes once known
    readonly_source: bool = True


@dataclass(frozen=True)
class SourceNic:
    mac: str | None
    vnet: str                 # network or bridge name on the source
    vnet_type: str = "network"  # "network" | "bridge"
    model: str | None = None
    source_dev: str | None = None  # the NIC's name on the source, e.g. "eth0"


@dataclass(frozen=True)
class SourceRemovable:
    kind: str                  # "cdrom" | "floppy"
    target_dev: str | None = None


@dataclass(frozen=True)
class SourceCpu:
    vendor: str | None = None
    model: str | None = None
    sockets: int | None = None
    cores: int | None = None
    threads: int | None = None


@dataclass(frozen=True)
class Source:
    name: str
    hypervisor: str                  # "physical", "kvm", "vmware", "unknown" …
    memory: int                      # bytes
    vcpus: int
    disks: tuple[SourceDisk, ...]
    nics: tuple[SourceNic, ...] = ()
    removables: tuple[SourceRemovable, ...] = ()
    cpu: SourceCpu = field(default_factory=SourceCpu)
    firmware: str = "unknown"        # "bios" | "uefi" | "unknown"
    secure_boot: bool = False        # the source had UEFI secure boot on (OVA/VMX say so)
    tpm: bool = False                # the source had a (v)TPM (VMX, OVF, libvirt XML say so)
    features: tuple[str, ...] = ()   # "acpi", "apic", "pae"
    clock: str | None = None         # "utc" | "localtime" | None


@dataclass(frozen=True)
class Inspect:
    root: str
    type: str                  # "linux", "windows" …
    distro: str                # "debian", "rhel", "sles" …
    major: int
    minor: int
    arch: str
    product_name: str
    package_format: str        # "deb", "rpm" …
    package_management: str    # "apt", "dnf", "yum", "zypper" …
    hostname: str = ""
    mountpoints: tuple[tuple[str, str], ...] = ()  # (mountpoint, device), shortest first
    firmware: str = "bios"     # "bios" | "uefi" (from the guest's disks: ESP present ⇒ uefi)


@dataclass(frozen=True)
class StaticIp:
    """`--mac MAC:ip:ADDR,GW,LEN,DNS…`: a static configuration the converter writes."""

    address: str
    prefix: int
    gateway: str | None = None
    dns: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetNicPlan:
    """A NIC the target will have; the converter pins guest names to these MACs."""

    mac: str
    source_dev: str | None     # name the NIC had on the source ("eth0") if known
    network: str
    vnet_type: str = "network"
    static: StaticIp | None = None   # --mac MAC:ip:… for this NIC


@dataclass(frozen=True)
class ConvertOptions:
    block_bus: str = "virtio-blk"          # "virtio-blk" | "virtio-scsi"
    nics: tuple[TargetNicPlan, ...] = ()
    keep_serial_console: bool = True
    disk_count: int = 1                    # the converter names this many target disks


@dataclass(frozen=True)
class GuestCaps:
    block_bus: str             # "virtio-blk" | "virtio-scsi" | "ide"
    net_bus: str               # "virtio-net" | "e1000"
    video: str                 # "vga" | "qxl" | "virtio"
    machine: str               # "pc" | "q35"
    arch: str
    firmware: str              # "bios" | "uefi"
    virtio_rng: bool = True
    virtio_balloon: bool = True
    acpi: bool = True
    kernel: str | None = None  # the kernel version made the default, if Linux
    # The device name the converter wrote into the guest for each disk index ("vda", "vdb"):
    # outputs read these (never recompute them from the bus), so guest and metadata agree.
    target_devs: tuple[str, ...] = ()
    hyperv: bool = False       # Hyper-V enlightenments (Windows guests)
    clock: str | None = None   # "localtime" where the guest keeps the RTC in local time
    tpm: bool = False          # a TPM 2.0 device (the source had one / the OS needs one)


@dataclass(frozen=True)
class TargetDisk:
    path: str                  # where the disk is: a final file path, or a volume/URI
    format: str                # "raw" | "qcow2"
    target_dev: str            # "vda", "sda" … as the converter wrote it into the guest
    size: int


@dataclass(frozen=True)
class Disk:
    """One disk from input to output.  Stages add to it with `dataclasses.replace`:
    Overlays → `overlay`; the output's setup → `destination`; bus assignment → `target`."""

    source: SourceDisk
    overlay: str = ""                        # the qcow2 overlay over the read-only source
    destination: Destination | None = None   # where the output wants this disk written
    target: TargetDisk | None = None         # what the metadata says about the written disk

    @property
    def index(self) -> int:
        return self.source.index


@dataclass(frozen=True)
class TargetMeta:
    name: str
    source: Source
    inspect: Inspect | None
    caps: GuestCaps
    disks: tuple[TargetDisk, ...]
    nics: tuple[TargetNicPlan, ...]

    @property
    def tpm(self) -> bool:
        """A TPM 2.0 in the output: the guest uses one (converter) or the source had one."""
        return self.caps.tpm or self.source.tpm
