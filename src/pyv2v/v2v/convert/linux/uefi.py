r"""UEFI guests: make sure firmware with empty NVRAM finds the guest's boot loader.

A converted guest starts under OVMF with fresh variables, so the distro's boot entry
(\EFI\debian\shimx64.efi …) is gone and the firmware falls back to the removable-media path
\EFI\BOOT\BOOTX64.EFI.  If that is missing, the distro's loader is copied there as
``grub-install --removable`` would: shim as BOOTX64.EFI with grub and MokManager beside it (shim
loads grubx64.efi from its own directory), or grub alone, plus the distro's grub.cfg stub for a
grub that looks beside itself.  The fallback shim helper (fbx64.efi) is not copied: it would
rewrite NVRAM and reset on every boot from this path.
"""

from __future__ import annotations

from .... import log
from ..guest import Guest

ESP_EFI = "/boot/efi/EFI"
FALLBACK_DIR = f"{ESP_EFI}/BOOT"
FALLBACK = {"x86_64": "BOOTX64.EFI", "aarch64": "BOOTAA64.EFI", "i386": "BOOTIA32.EFI"}
LOADERS = {
    "x86_64": ("shimx64.efi", "grubx64.efi"),
    "aarch64": ("shimaa64.efi", "grubaa64.efi"),
    "i386": ("shimia32.efi", "grubia32.efi"),
}
COMPANIONS = ("grubx64.efi", "grubaa64.efi", "grubia32.efi", "mmx64.efi", "mmaa64.efi",
              "grub.cfg")


def _find_ci(guest: Guest, directory: str, name: str) -> str | None:
    """A file in `directory` named `name`, ignoring case (FAT is case-insensitive)."""
    if not guest.is_dir(directory):
        return None
    for n in guest.ls(directory):
        if n.lower() == name.lower() and guest.is_file(f"{directory}/{n}"):
            return f"{directory}/{n}"
    return None


def ensure_fallback(guest: Guest, arch: str, vendor_dirs: tuple[str, ...]) -> str | None:
    """Create \\EFI\\BOOT\\BOOT<arch>.EFI if missing; returns the loader it copied, if any."""
    target_name = FALLBACK.get(arch)
    if target_name is None or not guest.is_dir(ESP_EFI):
        log.warning(f"no EFI system partition at /boot/efi (or unknown arch {arch}): the "
                    "UEFI fallback boot loader was not checked")
        return None
    boot_dir = next((f"{ESP_EFI}/{n}" for n in guest.ls(ESP_EFI) if n.upper() == "BOOT"), None)
    if boot_dir and _find_ci(guest, boot_dir, target_name):
        log.debug(f"{boot_dir}/{target_name} exists")
        return None
    present = [n for n in guest.ls(ESP_EFI) if n.upper() != "BOOT"]
    ordered = [n for v in vendor_dirs for n in present if n.lower() == v.lower()]
    ordered += [n for n in present if n not in ordered]
    for vendor in ordered:
        src_dir = f"{ESP_EFI}/{vendor}"
        for loader in LOADERS[arch]:
            src = _find_ci(guest, src_dir, loader)
            if src is None:
                continue
            dest_dir = boot_dir or FALLBACK_DIR
            guest.mkdir_p(dest_dir)
            guest.cp(src, f"{dest_dir}/{target_name}")
            for comp in COMPANIONS:
                c = _find_ci(guest, src_dir, comp)
                if c and c != src:
                    guest.cp(c, f"{dest_dir}/{comp}")
            log.message(f"Installed the UEFI fallback boot loader from {src}")
            return src
    log.warning(f"no boot loader found under {ESP_EFI}: the guest may not boot under UEFI")
    return None
