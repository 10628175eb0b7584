"""The SUSE family (SLES, openSUSE): rpm, dracut (SLE 12 and later) or mkinitrd, wicked.

Network configuration is wicked's ifcfg files in /etc/sysconfig/network, its native XML and
NetworkManager keyfiles.  The initramfs is rebuilt with dracut where present; SLE 11's mkinitrd
instead takes the drivers from INITRD_MODULES in /etc/sysconfig/kernel, from which the Xen
paravirtual drivers are also removed.  YaST's bootloader files name devices too and are
rewritten with the rest.
"""

from __future__ import annotations

import re
from typing import ClassVar

from ....errors import V2VError
from ...types import Inspect
from ..guest import Guest
from . import dracut
from .base import LinuxConverter
from .ifcfg import Ifcfg
from .kernels import Kernel
from .netconfig import NetConfig
from .nmkeyfile import NMKeyfile
from .packages import PackageDb, Rpm
from .wicked import Wicked

SYSCONFIG_KERNEL = "/etc/sysconfig/kernel"
MKINITRD = "/sbin/mkinitrd"
XEN_MODULES = ("xennet", "xen-vnif", "xenblk", "xen-vbd")
_INITRD_RE = re.compile(r'^(\s*(?:DOMU_)?INITRD_MODULES=)"([^"]*)"(.*)$')


def set_initrd_modules(text: str, drivers: list[str]) -> str:
    """INITRD_MODULES gains `drivers`; it and DOMU_INITRD_MODULES lose the Xen PV drivers."""
    out = []
    for line in text.splitlines(keepends=True):
        m = _INITRD_RE.match(line.rstrip("\n"))
        if m:
            mods = [x for x in m.group(2).split() if x not in XEN_MODULES]
            if not m.group(1).strip().startswith("DOMU_"):
                mods += [d for d in drivers if d not in mods]
            line = f'{m.group(1)}"{" ".join(mods)}"{m.group(3)}\n'
        out.append(line)
    return "".join(out)


class SuseConverter(LinuxConverter):
    family = "suse"
    package_db: ClassVar[PackageDb] = Rpm()
    initrd_template = "/boot/initrd-{version}"
    net_configs: ClassVar[tuple[NetConfig, ...]] = (
        Ifcfg("/etc/sysconfig/network", suse=True), Wicked(), NMKeyfile())
    extra_device_files = ("/etc/default/grub_installdevice", "/etc/sysconfig/bootloader")
    efi_vendor_dirs = ("sles", "opensuse")
    guest_agent_install = (
        "# pyv2v: install the QEMU guest agent if the package repositories are reachable\n"
        "timeout 900 zypper --non-interactive install qemu-guest-agent"
        " && systemctl enable --now qemu-guest-agent\n")

    def uninstaller_env(self, inspect: Inspect) -> dict[str, str]:
        return {"rootdev": inspect.root}   # VMware's uninstaller asks SUSE's mkinitrd for it

    def build_initramfs(self, guest: Guest, kernel: Kernel, initrd: str,
                        drivers: list[str]) -> None:
        if guest.is_file(SYSCONFIG_KERNEL):
            guest.edit_text(SYSCONFIG_KERNEL, lambda t: set_initrd_modules(t, drivers))
        tool = dracut.find_dracut(guest)
        if tool:
            dracut.rebuild(guest, tool, kernel.version, initrd, drivers)
        elif guest.is_file(MKINITRD):
            self.run(guest, [MKINITRD, "-m", " ".join(drivers), "-i", initrd,
                             "-k", kernel.vmlinuz])
        else:
            raise V2VError("neither dracut nor mkinitrd was found in the guest: cannot add the "
                           "virtio drivers to its initramfs")
