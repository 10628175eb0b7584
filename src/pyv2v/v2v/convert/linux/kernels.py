"""Installed kernels: find them, tell which can drive virtio hardware, and choose one.

A kernel is installed when ``/boot/vmlinuz-VERSION`` exists and ``/lib/modules/VERSION`` is a
directory (this skips rescue images and leftovers).  Its drivers are read from ``modules.dep``
(loadable modules, any compression) and ``modules.builtin``; without ``modules.dep`` the module
tree itself is listed.  The chosen kernel is the newest non-debug one that has every driver in
`REQUIRED`; with none, a V2VError names what is missing.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from .... import log
from ....errors import V2VError
from ..guest import Guest

# Drivers a kernel needs to boot and reach the network on the target's virtio hardware.
REQUIRED = ("virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net")

_KO_RE = re.compile(r"\.ko(?:\.(?:xz|gz|zst|bz2))?$")


def module_name(path: str) -> str:
    """``kernel/drivers/block/virtio_blk.ko.xz`` → ``virtio_blk`` (dashes as underscores)."""
    return _KO_RE.sub("", posixpath.basename(path.strip())).replace("-", "_")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A natural sort key: ``6.1.0-10-amd64`` sorts after ``6.1.0-9-amd64``."""
    parts = re.findall(r"\d+|[A-Za-z]+", version)
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts)


@dataclass(frozen=True)
class Kernel:
    version: str                  # the /lib/modules directory name (what dracut calls kver)
    vmlinuz: str                  # /boot/vmlinuz-VERSION
    modules: frozenset[str]       # loadable module names
    builtin: frozenset[str]       # built-in driver names

    def has(self, driver: str) -> bool:
        return driver in self.modules or driver in self.builtin

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(d for d in REQUIRED if not self.has(d))

    @property
    def is_debug(self) -> bool:
        return bool(re.search(r"[-+.]debug\b|debug$", self.version))

    @property
    def modules_dir(self) -> str:
        return f"/lib/modules/{self.version}"


def _read_modules(guest: Guest, moddir: str) -> tuple[frozenset[str], frozenset[str]]:
    dep, builtin = f"{moddir}/modules.dep", f"{moddir}/modules.builtin"
    if guest.is_file(dep):
        mods = {module_name(line.split(":", 1)[0])
                for line in guest.read_lines(dep) if ":" in line}
    else:
        log.debug(f"{dep} is missing: listing {moddir}")
        mods = {module_name(p) for p in guest.find(moddir) if _KO_RE.search(p)}
    built = ({module_name(line) for line in guest.read_lines(builtin) if line.strip()}
             if guest.is_file(builtin) else set())
    return frozenset(mods), frozenset(built)


def installed_kernels(guest: Guest) -> list[Kernel]:
    """Every installed kernel, newest first."""
    if not guest.is_dir("/boot"):
        return []
    kernels = []
    for name in guest.ls("/boot"):
        if not name.startswith("vmlinuz-"):
            continue
        version = name[len("vmlinuz-"):]
        moddir = f"/lib/modules/{version}"
        if not guest.is_dir(moddir):
            log.debug(f"ignoring /boot/{name}: no {moddir}")
            continue
        mods, built = _read_modules(guest, moddir)
        kernels.append(Kernel(version, f"/boot/{name}", mods, built))
    kernels.sort(key=lambda k: version_key(k.version), reverse=True)
    return kernels


def choose_kernel(kernels: list[Kernel]) -> Kernel:
    """The newest non-debug kernel with every REQUIRED driver (debug kernels as a last resort)."""
    if not kernels:
        raise V2VError("no installed kernel was found in the guest (/boot/vmlinuz-* with "
                       "/lib/modules/*)")
    for k in kernels:
        state = "virtio ok" if not k.missing else "lacks " + ", ".join(k.missing)
        log.debug(f"kernel {k.version}: {state}{' (debug)' if k.is_debug else ''}")
    usable = [k for k in kernels if not k.missing]
    if not usable:
        desc = "; ".join(f"{k.version} lacks {', '.join(k.missing)}" for k in kernels)
        raise V2VError(f"no installed kernel has the virtio drivers needed on KVM ({desc}): "
                       "install a kernel with virtio support in the guest first")
    usable.sort(key=lambda k: k.is_debug)   # stable: newest non-debug first
    return usable[0]
