"""The guest's package database (dpkg, rpm) and the foreign hypervisor tools removed through it.

`PackageDb` is what a family uses to list and remove packages inside the appliance, without
network: `Dpkg` reads ``/var/lib/dpkg/status`` directly and purges with ``dpkg --purge``; `Rpm`
queries and erases with ``rpm``.  `HYPERVISOR_PACKAGES` names every package of VMware, VirtualBox,
Hyper-V, Xen and Parallels guest tools in any family (names absent from a guest cost nothing);
`TARBALL_UNINSTALLERS` covers the tools installed by their vendors' own installers.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from .... import log
from ....errors import V2VError
from ..guest import Guest

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GUEST_ENV = {"PATH": GUEST_PATH, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}

# Package names (exact, or a prefix ending in "*") of foreign hypervisor guest tools.
HYPERVISOR_PACKAGES: dict[str, tuple[str, ...]] = {
    "VMware Tools": ("open-vm-tools", "open-vm-tools-*", "vmware-tools-*", "VMwareTools",
                     "kmod-vmware-tools*", "libvmtools0", "vmware-guestproxy"),
    "VirtualBox Guest Additions": ("virtualbox-guest-*", "VirtualBox-guest-*",
                                   "virtualbox-kmp-*"),
    "Hyper-V tools": ("hyperv-daemons", "hyperv-daemons-*", "hypervkvpd", "hypervvssd",
                      "hypervfcopyd", "hyperv-tools", "hyper-v", "microsoft-hyper-v",
                      "kmod-microsoft-hyper-v"),
    "Xen tools": ("xe-guest-utilities", "xe-guest-utilities-*", "xen-tools-domU",
                  "xenstore-utils", "kmod-xenpv", "kmod-xenpv-*"),
    "Parallels Tools": ("parallels-tools", "parallels-tools-*", "prl-tools"),
}


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


class PackageDb(ABC):
    """Listing and removing packages with the guest's own package manager."""

    @abstractmethod
    def installed(self, guest: Guest) -> set[str]: ...

    @abstractmethod
    def required_by_others(self, guest: Guest, names: set[str]) -> dict[str, str]:
        """Of `names`, those another installed package (not in `names`) depends on → it."""

    @abstractmethod
    def remove(self, guest: Guest, names: list[str]) -> None: ...


_DEP_RE = re.compile(r"^\s*([A-Za-z0-9.+-]+)")


class Dpkg(PackageDb):
    STATUS = "/var/lib/dpkg/status"

    def _stanzas(self, guest: Guest) -> list[dict[str, str]]:
        if not guest.is_file(self.STATUS):
            return []
        out = []
        for block in guest.read_text(self.STATUS).split("\n\n"):
            fields: dict[str, str] = {}
            key = ""
            for line in block.splitlines():
                if line[:1] in (" ", "\t") and key:
                    fields[key] += "\n" + line
                elif ":" in line:
                    key, _, val = line.partition(":")
                    fields[key] = val.strip()
            if fields.get("Status", "").endswith(" installed"):
                out.append(fields)
        return out

    def installed(self, guest: Guest) -> set[str]:
        return {s["Package"] for s in self._stanzas(guest) if "Package" in s}

    def required_by_others(self, guest: Guest, names: set[str]) -> dict[str, str]:
        needed: dict[str, str] = {}
        for s in self._stanzas(guest):
            pkg = s.get("Package", "")
            if pkg in names:
                continue
            for field in ("Depends", "Pre-Depends"):
                for alt in s.get(field, "").split(","):
                    choices = [m.group(1) for a in alt.split("|") if (m := _DEP_RE.match(a))]
                    # Only a dependency with no alternative outside `names` pins a package.
                    if choices and all(c in names for c in choices):
                        for c in choices:
                            needed.setdefault(c, pkg)
        return needed

    def remove(self, guest: Guest, names: list[str]) -> None:
        guest.command_env(["dpkg", "--purge", *names], GUEST_ENV)


class Rpm(PackageDb):
    def installed(self, guest: Guest) -> set[str]:
        for stale in guest.glob("/var/lib/rpm/__db.0*"):
            guest.rm_f(stale)   # stale Berkeley DB environment files break rpm (RHBZ#1143866)
        out = guest.command_env(["rpm", "-qa", "--qf", "%{NAME}\\n"], GUEST_ENV)
        return {line.strip() for line in out.splitlines() if line.strip()}

    def required_by_others(self, guest: Guest, names: set[str]) -> dict[str, str]:
        return {}   # rpm -e refuses a removal that breaks dependencies; see remove()

    def remove(self, guest: Guest, names: list[str]) -> None:
        guest.command_env(["rpm", "-e", *names], GUEST_ENV)


# Tools installed by their vendor's installer, outside the package database --------------------

@dataclass(frozen=True)
class TarballUninstaller:
    name: str
    locate: Callable[[Guest], list[str] | None]   # → argv of the uninstaller, or None


def _vmware(guest: Guest) -> list[str] | None:
    tool = "/usr/bin/vmware-uninstall-tools.pl"
    if not guest.is_file(tool):
        return None
    # Keep the uninstaller from rebuilding every kernel's initramfs: we rebuild the one we boot.
    locations = "/etc/vmware-tools/locations"
    if guest.is_file(locations):
        guest.write(locations, guest.read_text(locations) + "".join(
            f"remove_answer {k}\n" for k in ("RESTORE_RAMDISK_CMD", "RESTORE_RAMDISK_KERNELS",
                                             "RESTORE_RAMDISK_ONECALL")))
    return [tool]


def _vbox(guest: Guest) -> list[str] | None:
    config = "/var/lib/VBoxGuestAdditions/config"
    if not guest.is_file(config):
        return None
    for line in guest.read_lines(config):
        if line.startswith("INSTALL_DIR="):
            path = line.split("=", 1)[1].strip().strip("'\"") + "/uninstall.sh"
            if path.startswith("/") and guest.is_file(path):
                return [path]
    return None


def _parallels(guest: Guest) -> list[str] | None:
    tool = "/usr/lib/parallels-tools/install"
    return [tool, "-r"] if guest.is_file(tool) else None


TARBALL_UNINSTALLERS = (
    TarballUninstaller("VMware Tools", _vmware),
    TarballUninstaller("VirtualBox Guest Additions", _vbox),
    TarballUninstaller("Parallels Tools", _parallels),
)


def remove_hypervisor_tools(guest: Guest, db: PackageDb, installed: set[str],
                            extra_env: dict[str, str]) -> list[str]:
    """Remove every foreign hypervisor tool found; returns what was removed (for the log)."""
    removed: list[str] = []
    doomed = {p for p in installed
              if any(matches(p, pats) for pats in HYPERVISOR_PACKAGES.values())}
    for pkg, by in sorted(db.required_by_others(guest, doomed).items()):
        log.warning(f"keeping {pkg} in the guest: the installed package {by} depends on it")
        doomed.discard(pkg)
    if doomed:
        names = sorted(doomed)
        log.message("Removing hypervisor tools: " + " ".join(names))
        try:
            db.remove(guest, names)
            removed += names
        except V2VError as e:   # a failed removal must not stop the conversion
            log.warning(f"could not remove {' '.join(names)}: {e}")
    for tool in TARBALL_UNINSTALLERS:
        argv = tool.locate(guest)
        if argv is None:
            continue
        log.message(f"Uninstalling {tool.name} (installed from the vendor's installer)")
        try:
            guest.command_env(argv, {**GUEST_ENV, **extra_env})
            removed.append(tool.name)
        except V2VError as e:
            log.warning(f"{tool.name} was found but its uninstaller failed: {e}")
    return removed
