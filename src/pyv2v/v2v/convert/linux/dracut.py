"""dracut, as Red Hat and SUSE families use it: persist the drivers, then rebuild one initramfs.

The drivers go into ``/etc/dracut.conf.d/60-pyv2v-virtio.conf`` (so the guest's own later
rebuilds keep them) and on the command line (``--add-drivers``) for this run, which rebuilds only
the chosen kernel's image.  dracut runs in its default host-only mode inside the appliance: that
adds the appliance's storage drivers too, which is harmless, and keeps the image small.
"""

from __future__ import annotations

from ..guest import Guest
from .packages import GUEST_ENV

CONF = "/etc/dracut.conf.d/60-pyv2v-virtio.conf"
DRACUT_PATHS = ("/usr/bin/dracut", "/sbin/dracut", "/usr/sbin/dracut")


def find_dracut(guest: Guest) -> str | None:
    return next((p for p in DRACUT_PATHS if guest.is_file(p)), None)


def conf_text(drivers: list[str]) -> str:
    return ("# Written by pyv2v: drivers for the KVM virtio hardware this guest runs on.\n"
            f'add_drivers+=" {" ".join(drivers)} "\n')


def rebuild(guest: Guest, dracut: str, version: str, initrd: str, drivers: list[str]) -> None:
    guest.mkdir_p("/etc/dracut.conf.d")
    guest.write(CONF, conf_text(drivers))
    guest.command_env([dracut, "--force", "--add-drivers", " ".join(drivers), initrd, version],
                      GUEST_ENV)
