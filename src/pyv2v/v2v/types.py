"""The data that flows between pipeline stages, as frozen dataclasses.

`Source` is what an input found (disks, NICs, CPUs, memory, firmware); `Inspect` is what
libguestfs inspection found inside the guest; `GuestCaps` is what the converter made the guest
able to use (buses, machine type, firmware); `TargetDisk`/`TargetMeta` describe what the output
writes.  Stages never share mutable state beyond these.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
class TargetNicPlan:
    """A NIC the target will have; the converter pins guest names to these MACs."""

    mac: str
    source_dev: str | None     # name the NIC had on the source ("eth0") if known
    network: str
    vnet_type: str = "network"


@dataclass(frozen=True)
class ConvertOptions:
    block_bus: str = "virtio-blk"          # "virtio-blk" | "virtio-scsi"
    nics: tuple[TargetNicPlan, ...] = ()
    keep_serial_console: bool = True


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


@dataclass(frozen=True)
class TargetDisk:
    path: str                  # final path of the written disk
    format: str                # "raw" | "qcow2"
    target_dev: str            # "vda", "sda" …
    size: int


@dataclass(frozen=True)
class TargetMeta:
    name: str
    source: Source
    inspect: Inspect | None
    caps: GuestCaps
    disks: tuple[TargetDisk, ...]
    nics: tuple[TargetNicPlan, ...]
