"""The Linux conversion, stage by stage, shared by every family.

`LinuxConverter.convert` is the whole procedure: remove foreign hypervisor tools, choose the
kernel, rewrite device names (source-only by-id/by-path names to UUIDs, or refuse at once),
make the kernel the default, pin NIC names, queue first-boot tasks, arrange SELinux relabelling
and the UEFI fallback loader, rebuild the initramfs with the virtio drivers, verify, and report
`GuestCaps` (with the device names written, one per disk).  A family subclass supplies only what
really differs: its package database, network configuration formats, initramfs tool and paths
(class attributes and `build_initramfs`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

from .... import log
from ....errors import V2VError
from ...types import ConvertOptions, GuestCaps, Inspect
from ..guest import Guest
from . import firstboot, stablenames, uefi
from .bootconfig import (
    DEVICE_FILES,
    check_device_names,
    expand,
    rewrite_device_names,
    set_default_kernel,
)
from .devices import DeviceMapper
from .kernels import Kernel, choose_kernel, installed_kernels
from .netconfig import NetConfig
from .network import configure_network
from .packages import GUEST_ENV, PackageDb, remove_hypervisor_tools

# Drivers put into the initramfs (those the chosen kernel has as loadable modules), in this
# order; their dependencies (virtio, virtio_ring, scsi_mod …) follow automatically.
INITRAMFS_DRIVERS = ("virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "virtio_net",
                     "virtio_console")
GUEST_AGENT = "qemu-guest-agent"
SELINUX_CONFIG = "/etc/selinux/config"


class LinuxConverter(ABC):
    """Converts one Linux guest; subclasses are the families (see linux/__init__.py)."""

    family: ClassVar[str] = "linux"
    package_db: ClassVar[PackageDb]
    initrd_template: ClassVar[str]                      # "/boot/initrd.img-{version}"
    net_configs: ClassVar[tuple[NetConfig, ...]] = ()
    extra_device_files: ClassVar[tuple[str, ...]] = ()
    efi_vendor_dirs: ClassVar[tuple[str, ...]] = ()
    guest_agent_install: ClassVar[str] = ""            # shell run at first boot

    # Stages -----------------------------------------------------------------------------

    def convert(self, guest: Guest, inspect: Inspect, opts: ConvertOptions) -> GuestCaps:
        start = time.monotonic()
        log.message(f"Converting {self.display_name(guest, inspect)} to run on KVM")
        installed = self.package_db.installed(guest)
        removed = remove_hypervisor_tools(guest, self.package_db, installed,
                                          self.uninstaller_env(inspect))
        kernel = choose_kernel(installed_kernels(guest))
        log.message(f"Using kernel {kernel.version}")
        mapper = DeviceMapper(opts.block_bus)
        files = DEVICE_FILES + self.extra_device_files
        rewrite_device_names(guest, mapper, files)
        stablenames.rewrite(guest, inspect, expand(guest, files))
        stablenames.check(guest, expand(guest, files))
        set_default_kernel(guest, kernel)
        pins = configure_network(guest, opts.nics, self.net_configs)
        if pins:
            log.message("Pinned network interface names: "
                        + ", ".join(f"{p.name}={p.mac}" for p in pins))
        if GUEST_AGENT not in installed and self.guest_agent_install:
            firstboot.queue(guest, "50-install-qemu-guest-agent", self.guest_agent_install)
        self.selinux_relabel(guest)
        if inspect.firmware == "uefi":
            uefi.ensure_fallback(guest, inspect.arch, (inspect.distro, *self.efi_vendor_dirs))
        self.rebuild_initramfs_guarded(guest, kernel, files)
        check_device_names(guest, mapper, files)
        log.debug(f"conversion took {time.monotonic() - start:.1f} s"
                  + (f"; removed {', '.join(removed)}" if removed else ""))
        return GuestCaps(
            block_bus=opts.block_bus, net_bus="virtio-net", video="vga",
            machine="q35" if inspect.firmware == "uefi" else "pc", arch=inspect.arch,
            firmware=inspect.firmware, virtio_rng=kernel.has("virtio_rng"),
            virtio_balloon=kernel.has("virtio_balloon"), acpi=True, kernel=kernel.version,
            target_devs=mapper.target_devs(opts.disk_count))

    def rebuild_initramfs_guarded(self, guest: Guest, kernel: Kernel,
                                  files: tuple[str, ...]) -> None:
        """Rebuild the initramfs; undo any boot file its hooks regenerated in the appliance
        (a regenerated grub.cfg would name the appliance's devices)."""
        saved = {p: guest.read(p) for p in expand(guest, files)}
        self.rebuild_initramfs(guest, kernel)
        for path, data in saved.items():
            if guest.read(path) != data:
                log.warning(f"a hook in the guest rewrote {path} during the initramfs rebuild: "
                            "restored the converted version")
                guest.write(path, data)

    def rebuild_initramfs(self, guest: Guest, kernel: Kernel) -> None:
        initrd = self.initrd_template.format(version=kernel.version)
        before = guest.checksum(initrd) if guest.is_file(initrd) else None
        drivers = [d for d in INITRAMFS_DRIVERS if d in kernel.modules]
        log.message(f"Rebuilding the initramfs for {kernel.version} with the virtio drivers")
        t = time.monotonic()
        self.build_initramfs(guest, kernel, initrd, drivers)
        log.debug(f"initramfs rebuilt in {time.monotonic() - t:.1f} s")
        if not guest.is_file(initrd):
            raise V2VError(f"rebuilding the initramfs did not produce {initrd} in the guest")
        if before is not None and guest.checksum(initrd) == before:
            raise V2VError(f"rebuilding the initramfs left {initrd} unchanged in the guest")

    def selinux_relabel(self, guest: Guest) -> None:
        """Files written here have no SELinux labels: relabel at first boot where it is on."""
        if not guest.is_file(SELINUX_CONFIG):
            return
        for line in guest.read_lines(SELINUX_CONFIG):
            key, _, val = line.strip().partition("=")
            if key == "SELINUX" and val.strip().strip("\"'") in ("enforcing", "permissive"):
                guest.write("/.autorelabel", "")
                log.debug("SELinux is enabled: /.autorelabel created")
                return

    @staticmethod
    def display_name(guest: Guest, inspect: Inspect) -> str:
        """PRETTY_NAME from os-release ("Debian GNU/Linux 12 (bookworm)"), else inspection's."""
        for path in ("/etc/os-release", "/usr/lib/os-release"):
            if guest.is_file(path):
                for line in guest.read_lines(path):
                    if line.startswith("PRETTY_NAME="):
                        return line.split("=", 1)[1].strip().strip("\"'")
        name = inspect.product_name
        return name if any(c.isalpha() for c in name) else f"{inspect.distro} {name}".strip()

    # Family hooks -----------------------------------------------------------------------

    @abstractmethod
    def build_initramfs(self, guest: Guest, kernel: Kernel, initrd: str,
                        drivers: list[str]) -> None:
        """Rebuild `initrd` for `kernel` with `drivers`, using the guest's own tool."""

    def uninstaller_env(self, inspect: Inspect) -> dict[str, str]:
        """Extra environment for vendor tool uninstallers."""
        return {}

    @staticmethod
    def run(guest: Guest, argv: list[str]) -> str:
        """Run a guest program with a full PATH and a non-interactive environment."""
        return guest.command_env(argv, GUEST_ENV)
