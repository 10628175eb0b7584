"""The guest's boot configuration files: rewrite device names in them and set the default kernel.

Which files name devices is data (`DEVICE_FILES`, plus a family's extras); each is rewritten in
place with `DeviceMapper`, symlinks skipped (their targets are in the list) and grubenv blocks
re-padded to 1024 bytes.  `set_default_kernel` makes the chosen kernel the default of whatever
menus the guest has: grub2 grub.cfg (static ``set default`` or ``saved_entry`` in grubenv), BLS
entries (``saved_entry``) and GRUB legacy ``menu.lst``/``grub.conf``.  Nothing is regenerated.
"""

from __future__ import annotations

import functools
import posixpath
import re

from .... import log
from ....errors import V2VError
from ..guest import Guest
from . import grub
from .devices import DeviceMapper
from .kernels import Kernel

# Files that may name block devices, as guest globs (wildcards in the last component only).
DEVICE_FILES = (
    "/etc/fstab", "/etc/crypttab", "/etc/mtab.fstab",
    "/etc/default/grub", "/etc/default/grub.d/*.cfg", "/etc/kernel/cmdline",
    "/etc/initramfs-tools/conf.d/resume", "/etc/uswsusp.conf",
    "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/efi/EFI/*/grub.cfg",
    "/boot/grub/menu.lst", "/boot/grub/grub.conf", "/boot/loader/entries/*.conf",
    "/boot/grub/grubenv", "/boot/grub2/grubenv", "/boot/efi/EFI/*/grubenv",
)
GRUB2_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/efi/EFI/*/grub.cfg")
LEGACY_CONFIGS = ("/boot/grub/menu.lst", "/boot/grub/grub.conf")
BLS_DIR = "/boot/loader/entries"
OPTICAL_FS = {"iso9660", "udf"}
# Xen paravirtual consoles do not exist on KVM; the serial console does.
CONSOLE_RENAMES = (("console=xvc0", "console=ttyS0"),)


def expand(guest: Guest, globs: tuple[str, ...]) -> list[str]:
    """Existing regular files (not symlinks) matching the globs, each once, in order."""
    out: list[str] = []
    for pat in globs:
        paths = guest.glob(pat) if "*" in pat else [pat]
        for p in paths:
            if p not in out and guest.readlink(p) is None and guest.is_file(p):
                out.append(p)
    return out


def _is_optical(path: str, line: str) -> bool:
    """An fstab line for an optical drive: /dev/hdc as a CD-ROM is not one of the disks."""
    w = line.split()
    return path == "/etc/fstab" and len(w) >= 3 and bool(set(w[2].split(",")) & OPTICAL_FS)


def _disk_lines(path: str, text: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True) if not _is_optical(path, ln))


def _rewrite(mapper: DeviceMapper, path: str, text: str) -> str:
    if posixpath.basename(path) == "grubenv":
        env = grub.parse_grubenv(text)
        new = {k: mapper.rewrite(v) for k, v in env.items()}
        return text if new == env else grub.format_grubenv(new)
    text = "".join(line if _is_optical(path, line) else mapper.rewrite(line)
                   for line in text.splitlines(keepends=True))
    for old, new_console in CONSOLE_RENAMES:
        text = text.replace(old, new_console)
    return text


def rewrite_device_names(guest: Guest, mapper: DeviceMapper, globs: tuple[str, ...]) -> list[str]:
    """Rewrite source device names to target names in every file; returns the changed files."""
    changed = []
    for path in expand(guest, globs):
        if guest.edit_text(path, functools.partial(_rewrite, mapper, path)):
            changed.append(path)
    for old, new in sorted(mapper.seen.items()):
        log.debug(f"device name {old} → {new}")
    if changed:
        log.debug("device names rewritten in " + ", ".join(changed))
    if mapper.ambiguous():
        log.warning("the guest names its disks in more than one scheme ("
                    + ", ".join(sorted(mapper.schemes)) + "): the order of the target disks was "
                    "guessed; check /etc/fstab after conversion")
    return changed


def check_device_names(guest: Guest, mapper: DeviceMapper, globs: tuple[str, ...]) -> None:
    """Fail if any file still names a device the target will not have."""
    for path in expand(guest, globs):
        bad = mapper.leftovers(_disk_lines(path, guest.read_text(path)))
        if bad:
            raise V2VError(f"{path} in the guest still names {', '.join(sorted(set(bad)))} "
                           "after conversion")


# Default kernel ---------------------------------------------------------------------------

def _grubenv_path(cfg: str) -> str:
    return posixpath.join(posixpath.dirname(cfg), "grubenv")


def _set_saved_entry(guest: Guest, cfg: str, value: str) -> None:
    path = _grubenv_path(cfg)
    env = grub.parse_grubenv(guest.read_text(path)) if guest.is_file(path) else {}
    env["saved_entry"] = value
    guest.write(path, grub.format_grubenv(env))
    log.debug(f"{path}: saved_entry={value}")


def _bls_entries(guest: Guest) -> dict[str, str | None]:
    if not guest.is_dir(BLS_DIR):
        return {}
    return {posixpath.basename(p)[:-5]: grub.bls_kernel(guest.read_text(p))
            for p in guest.glob(f"{BLS_DIR}/*.conf")}


def _default_grub2(guest: Guest, cfg: str, want: str) -> bool:
    """Make the grub.cfg at `cfg` boot kernel basename `want`; False if it has no menu."""
    text = guest.read_text(cfg)
    value = grub.static_default(text)
    saved = value is not None and "saved_entry" in value
    if saved:
        env_path = _grubenv_path(cfg)
        env = grub.parse_grubenv(guest.read_text(env_path)) if guest.is_file(env_path) else {}
        value = env.get("saved_entry") or "0"
    value = value or "0"
    if "blscfg" in text:
        bls = _bls_entries(guest)
        if bls.get(value) == want:
            return True
        ids = sorted((k for k, kern in bls.items() if kern == want), reverse=True)
        if not ids:
            log.warning(f"no BLS entry in {BLS_DIR} boots {want}")
            return True
        if saved:
            _set_saved_entry(guest, cfg, ids[0])
        else:
            guest.write(cfg, grub.set_static_default(text, ids[0]))
        return True
    entries = grub.menu_entries(text)
    if not entries:
        return False
    current = grub.resolve(entries, value)
    if current is not None and current.kernel == want:
        log.debug(f"{cfg}: the default entry already boots {want}")
        return True
    target = next((e for e in entries if e.kernel == want), None)
    if target is None:
        log.warning(f"{cfg} has no menu entry for {want}: the guest may boot another kernel")
        return True
    if saved:
        _set_saved_entry(guest, cfg, target.default_value())
    else:
        guest.write(cfg, grub.set_static_default(text, target.default_value()))
        log.debug(f"{cfg}: default set to {target.default_value()}")
        _pin_grub_default(guest, target.default_value())
    return True


def _pin_grub_default(guest: Guest, value: str) -> None:
    """Keep the choice across the guest's next grub-mkconfig: a newer kernel it would put first
    cannot drive the target's hardware."""
    path = "/etc/default/grub"
    if not guest.is_file(path):
        return
    text = guest.read_text(path)
    if re.search(r"^\s*GRUB_DEFAULT=[\"']?saved", text, re.M):
        return
    line = f'GRUB_DEFAULT="{value}"'
    new, n = re.subn(r"^\s*GRUB_DEFAULT=.*$", line, text, flags=re.M)
    guest.write(path, new if n else text.rstrip("\n") + "\n" + line + "\n")
    log.debug(f"{path}: {line}")


def _default_legacy(guest: Guest, cfg: str, want: str) -> None:
    text = guest.read_text(cfg)
    kernels = grub.legacy_titles(text)
    if want not in kernels:
        log.warning(f"{cfg} has no entry for {want}: the guest may boot another kernel")
        return
    current = grub.legacy_default(text)
    if current is not None and current.isdigit() and int(current) < len(kernels) \
            and kernels[int(current)] == want:
        return
    guest.write(cfg, grub.set_legacy_default(text, kernels.index(want)))


def set_default_kernel(guest: Guest, kernel: Kernel) -> None:
    want = posixpath.basename(kernel.vmlinuz)
    found = False
    for cfg in expand(guest, GRUB2_CONFIGS):
        found = _default_grub2(guest, cfg, want) or found
    for cfg in expand(guest, LEGACY_CONFIGS):
        _default_legacy(guest, cfg, want)
        found = True
    if not found:
        log.warning("no GRUB configuration was found in the guest: the default kernel was not set")
