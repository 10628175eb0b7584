"""Device names only the source hardware has (/dev/disk/by-id/…, /dev/disk/by-path/…): rewritten
to ``UUID=`` where the conversion can tell which filesystem they name, refused where it cannot.

Portable names (``UUID=``, ``LABEL=``, ``PARTUUID=``, by-uuid, by-label, by-partuuid, LVM and
/dev/mapper names) survive the move and are kept.  A hardware name is resolved by, in order:

1. fstab — the line's mount point → the device inspection mounted there;
2. the kernel command line — ``root=NAME`` → inspection's root filesystem;
3. the same disk — once ``DISK-partN`` is known to be partition N of a disk, ``DISK-partM`` is
   partition M of it.

Each resolved name becomes ``UUID=<that filesystem's UUID>`` in every file the boot reads (fstab,
crypttab, GRUB and BLS kernel command lines, /etc/kernel/cmdline, resume settings).  `check`
then fails the conversion — before anything is written out — if such a file still names one.
"""

from __future__ import annotations

import functools
import posixpath
import re

from .... import log
from ....errors import V2VError
from ...types import Inspect
from ..guest import Guest
from . import grub

HARDWARE_NAME_RE = re.compile(r"/dev/disk/by-(?:id|path)/[^\s\"',;]+")
_PART_RE = re.compile(r"^(?P<disk>.+)-part(?P<n>\d+)$")
_ROOT_ARG_RE = re.compile(r"(?<![\w.-])root=(/dev/disk/by-(?:id|path)/[^\s\"',;]+)")
_DEV_PART_RE = re.compile(r"^(/dev/(?:sd|vd|hd|xvd)[a-z]+)(\d+)$")


def _uncommented(guest: Guest, path: str) -> list[str]:
    return [ln for ln in guest.read_lines(path) if not ln.lstrip().startswith("#")]


def find(guest: Guest, paths: list[str]) -> dict[str, list[str]]:
    """Every hardware name in `paths` (comments skipped) → the files naming it."""
    out: dict[str, list[str]] = {}
    for path in paths:
        for line in _uncommented(guest, path):
            for name in HARDWARE_NAME_RE.findall(line):
                if path not in out.setdefault(name, []):
                    out[name].append(path)
    return out


def resolve(guest: Guest, inspect: Inspect, paths: list[str], names: list[str]) -> dict[str, str]:
    """The device (the conversion's name for it) each hardware name refers to, where known."""
    mounts = dict(inspect.mountpoints)
    devs: dict[str, str] = {}
    if "/etc/fstab" in paths:
        for line in _uncommented(guest, "/etc/fstab"):
            w = line.split()
            if len(w) >= 2 and HARDWARE_NAME_RE.fullmatch(w[0]) and w[1] in mounts \
                    and not HARDWARE_NAME_RE.match(mounts[w[1]]):
                devs[w[0]] = mounts[w[1]]
    for path in paths:
        for line in _uncommented(guest, path):
            for name in _ROOT_ARG_RE.findall(line):
                devs.setdefault(name, inspect.root)
    disks: dict[str, str] = {}
    for name, dev in devs.items():
        m, d = _PART_RE.match(name), _DEV_PART_RE.match(dev)
        if m and d and m.group("n") == d.group(2):
            disks[m.group("disk")] = d.group(1)
    for name in names:
        m = _PART_RE.match(name)
        if name not in devs and m and m.group("disk") in disks:
            devs[name] = disks[m.group("disk")] + m.group("n")
    return devs


def _sub(text: str, new: dict[str, str]) -> str:
    return HARDWARE_NAME_RE.sub(lambda m: new.get(m.group(0), m.group(0)), text)


def _edit(path: str, new: dict[str, str], text: str) -> str:
    if posixpath.basename(path) == "grubenv":
        env = grub.parse_grubenv(text)
        out = {k: _sub(v, new) for k, v in env.items()}
        return text if out == env else grub.format_grubenv(out)
    return "".join(ln if ln.lstrip().startswith("#") else _sub(ln, new)
                   for ln in text.splitlines(keepends=True))


def rewrite(guest: Guest, inspect: Inspect, paths: list[str]) -> dict[str, str]:
    """Rewrite every resolvable hardware name to UUID=…; returns {old name: new name}."""
    found = find(guest, paths)
    if not found:
        return {}
    devs = resolve(guest, inspect, paths, list(found))
    new: dict[str, str] = {}
    for name, dev in devs.items():
        uuid = guest.fs_uuid(dev)
        if uuid:
            new[name] = f"UUID={uuid}"
        else:
            log.debug(f"{name} is {dev}, which has no UUID")
    for path in sorted({p for name in new for p in found[name]}):
        guest.edit_text(path, functools.partial(_edit, path, new))
    for old, repl in sorted(new.items()):
        log.message(f"Replaced the source-only device name {old} with {repl} in "
                    + ", ".join(found[old]))
    return new


def check(guest: Guest, paths: list[str]) -> None:
    """Fail if a file the boot reads still names a device only the source has."""
    left = find(guest, paths)
    if left:
        what = "; ".join(f"{name} (in {', '.join(p)})" for name, p in sorted(left.items()))
        raise V2VError("the guest names devices that only the source hardware has and that "
                       f"could not be mapped to a filesystem UUID: {what}. Change them to "
                       "UUID= or LABEL= in the guest before converting it, or the converted "
                       "guest could not find them")
