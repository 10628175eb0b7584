"""The Red Hat family (RHEL, CentOS, Rocky, AlmaLinux, Oracle Linux, Fedora): rpm and dracut.

Network configuration is ifcfg files in /etc/sysconfig/network-scripts and NetworkManager
keyfiles; the initramfs is rebuilt by dracut (RHEL 6 and later) or, for RHEL 5, by mkinitrd with
``--with=`` per driver.  BLS entries and grubenv are handled by the shared boot configuration code.
"""

from __future__ import annotations

from typing import ClassVar

from ....errors import V2VError
from ..guest import Guest
from . import dracut
from .base import LinuxConverter
from .ifcfg import Ifcfg
from .kernels import Kernel
from .netconfig import NetConfig
from .nmkeyfile import NMKeyfile
from .packages import PackageDb, Rpm

MKINITRD = "/sbin/mkinitrd"


class RedHatConverter(LinuxConverter):
    family = "redhat"
    package_db: ClassVar[PackageDb] = Rpm()
    initrd_template = "/boot/initramfs-{version}.img"
    net_configs: ClassVar[tuple[NetConfig, ...]] = (Ifcfg("/etc/sysconfig/network-scripts"),
                                                    NMKeyfile())
    extra_device_files = ("/etc/sysconfig/grub",)
    efi_vendor_dirs = ("redhat", "centos", "fedora", "rocky", "almalinux")
    guest_agent_install = (
        "# pyv2v: install the QEMU guest agent if the package repositories are reachable\n"
        "if command -v dnf >/dev/null; then pm=dnf; else pm=yum; fi\n"
        "timeout 900 $pm -y install qemu-guest-agent"
        " && systemctl enable --now qemu-guest-agent\n")

    def build_initramfs(self, guest: Guest, kernel: Kernel, initrd: str,
                        drivers: list[str]) -> None:
        tool = dracut.find_dracut(guest)
        if tool:
            dracut.rebuild(guest, tool, kernel.version, initrd, drivers)
        elif guest.is_file(MKINITRD):
            self.run(guest, [MKINITRD, "-f", *(f"--with={d}" for d in drivers), initrd,
                             kernel.version])
        else:
            raise V2VError("neither dracut nor mkinitrd was found in the guest: cannot add the "
                           "virtio drivers to its initramfs")
