"""The Debian family (Debian, Ubuntu, Linux Mint, Kali): dpkg, initramfs-tools, ifupdown/netplan.

The virtio drivers are appended to ``/etc/initramfs-tools/modules`` (honoured in every MODULES=
mode, and the only way with MODULES=list), so the guest's own next rebuild keeps them.  The
chosen kernel's existing image then gets them on the host (initrdpatch: seconds instead of the
75-140 s of a rebuild under emulation).  When that is not possible (no image, an unknown format,
a source device name inside), ``update-initramfs -c -k VERSION`` rebuilds it in the appliance.
``-c`` rather than ``-u``: it works when the image is missing and ignores
``update_initramfs=no``.  MODULES=dep stays as the user set it: on KVM, the guest's next rebuild
computes it from virtio hardware.  Only the appliance rebuild must not use it (it would pick the
appliance's drivers), so that one build gets MODULES=most from the temporary BUILD_CONF.
"""

from __future__ import annotations

from typing import ClassVar

from .... import log
from ....errors import V2VError
from ..guest import Guest
from .base import LinuxConverter
from .initrdpatch import NotPatchable, append_drivers
from .kernels import Kernel
from .netconfig import Ifupdown, NetConfig
from .netplan import Netplan
from .nmkeyfile import NMKeyfile
from .packages import Dpkg, PackageDb

MODULES_FILE = "/etc/initramfs-tools/modules"
CONF_FILES = ("/etc/initramfs-tools/initramfs.conf", "/etc/initramfs-tools/conf.d/*")
# Settings for the conversion's own rebuild only (removed afterwards).  FSTYPE names the root
# filesystem's type: the fsck hook would otherwise probe the fstab's (target) device, which the
# appliance does not have, and leave fsck out.  COMPRESSLEVEL=1: under emulation zstd -9 costs
# ~20 s against ~3 s for a 20 % larger image; the guest's next rebuild uses its own settings.
BUILD_CONF = "/etc/initramfs-tools/conf.d/zz-pyv2v-conversion"


def fstab_types(fstab: str, mountpoints: tuple[str, ...] = ("/", "/usr")) -> list[str]:
    """Filesystem types fstab gives for `mountpoints` (skipping "auto")."""
    out = []
    for line in fstab.splitlines():
        w = line.split()
        if len(w) >= 3 and not w[0].startswith("#") and w[1] in mountpoints \
                and w[2] not in ("auto", "none") and w[2] not in out:
            out.append(w[2])
    return out


def add_modules(text: str, drivers: list[str]) -> str:
    """Append the drivers not already listed in an initramfs-tools modules file."""
    listed = {line.split()[0].replace("-", "_") for line in text.splitlines()
              if line.strip() and not line.lstrip().startswith("#")}
    missing = [d for d in drivers if d not in listed]
    if not missing:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "# Added by pyv2v: virtio drivers for KVM\n" + "".join(f"{d}\n" for d in missing)


class DebianConverter(LinuxConverter):
    family = "debian"
    package_db: ClassVar[PackageDb] = Dpkg()
    initrd_template = "/boot/initrd.img-{version}"
    net_configs: ClassVar[tuple[NetConfig, ...]] = (Ifupdown(), Netplan(), NMKeyfile())
    efi_vendor_dirs = ("debian", "ubuntu", "kali")
    guest_agent_install = (
        "# pyv2v: install the QEMU guest agent if the package repositories are reachable\n"
        "export DEBIAN_FRONTEND=noninteractive\n"
        "timeout 300 apt-get -q update && timeout 600 apt-get -q -y install qemu-guest-agent"
        " && systemctl start qemu-guest-agent\n")

    def _modules_mode(self, guest: Guest) -> str:
        mode = "most"
        for pattern in CONF_FILES:
            for path in sorted(guest.glob(pattern)) if "*" in pattern else [pattern]:
                if not guest.is_file(path):
                    continue
                for line in guest.read_lines(path):
                    if line.strip().startswith("MODULES="):
                        mode = line.split("=", 1)[1].strip().strip("\"'")
        return mode

    def build_initramfs(self, guest: Guest, kernel: Kernel, initrd: str,
                        drivers: list[str]) -> None:
        if not guest.is_file("/usr/sbin/update-initramfs") and \
                not guest.is_file("/sbin/update-initramfs"):
            raise V2VError("update-initramfs was not found in the guest: cannot add the virtio "
                           "drivers to its initramfs (is initramfs-tools installed?)")
        old = guest.read_text(MODULES_FILE) if guest.is_file(MODULES_FILE) else ""
        new = add_modules(old, drivers)
        if new != old:
            guest.write(MODULES_FILE, new)
        mode = self._modules_mode(guest)
        log.debug(f"initramfs-tools MODULES={mode}; listed: {' '.join(drivers)}")
        try:
            append_drivers(guest, kernel, initrd, drivers)
            return
        except NotPatchable as e:
            log.debug(f"rebuilding the initramfs in the appliance: {e}")
        if mode == "dep":
            log.debug("MODULES=dep would pick the appliance's drivers: MODULES=most for the "
                      "conversion's build only")
        types = fstab_types(guest.read_text("/etc/fstab")) if guest.is_file("/etc/fstab") else []
        guest.write(BUILD_CONF, "# pyv2v, during conversion only\nCOMPRESSLEVEL=1\n"
                    + ("MODULES=most\n" if mode == "dep" else "")
                    + (f"FSTYPE={','.join(types)}\n" if types else ""))
        try:
            self.run(guest, ["update-initramfs", "-c", "-k", kernel.version])
        finally:
            guest.rm_f(BUILD_CONF)
