"""Network configuration formats: which interfaces each names, and re-binding them to new MACs.

One class per format — ifupdown, ifcfg (Red Hat network-scripts and SUSE wicked), NetworkManager
keyfiles, netplan, udev persistent-net rules — each with `names` (the interface names it
configures) and `retarget` (point "match this MAC" settings at the target's MAC).  Settings that
*set* a MAC (ifcfg MACADDR/LLADDR, ifupdown hwaddress, netplan macaddress outside match) are left
alone: they still work on the new NIC.  Edits are textual and keep everything else as it was.
"""

from __future__ import annotations

import posixpath
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from .... import log
from ..guest import Guest

PHYSICAL_NAME_RE = re.compile(r"^(eth\d+|en[a-z0-9_]+|em\d+|p\d+p\d+[a-z0-9_]*)$")


@dataclass(frozen=True)
class Pin:
    name: str   # interface name in the guest ("eth0")
    mac: str    # the target NIC's MAC, lower case


def mac_for(name: str | None, pins: list[Pin], sole_mac: str | None) -> str | None:
    """The MAC a config for interface `name` should match: its pin's, else the only NIC's."""
    for p in pins:
        if p.name == name:
            return p.mac
    if name is None or PHYSICAL_NAME_RE.match(name):
        return sole_mac
    return None


class NetConfig(ABC):
    @abstractmethod
    def names(self, guest: Guest) -> list[str]: ...

    @abstractmethod
    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        """Re-bind MAC matches to the target MACs; returns the files changed."""


def config_files(guest: Guest, directory: str, prefix: str = "", suffix: str = "") -> list[str]:
    if not guest.is_dir(directory):
        return []
    return [posixpath.join(directory, n) for n in guest.ls(directory)
            if n.startswith(prefix) and n.endswith(suffix) and not n.endswith(("~", ".bak"))
            and guest.is_file(posixpath.join(directory, n))]


class Ifupdown(NetConfig):
    """Debian's /etc/network/interfaces (+ interfaces.d): configured by name only."""

    def names(self, guest: Guest) -> list[str]:
        main = ["/etc/network/interfaces"] if guest.is_file("/etc/network/interfaces") else []
        paths = main + config_files(guest, "/etc/network/interfaces.d")
        out: list[str] = []
        for path in paths:
            for line in guest.read_lines(path):
                w = line.split()
                if len(w) >= 2 and w[0] in ("iface", "auto", "allow-hotplug", "allow-auto"):
                    out += [n for n in (w[1:2] if w[0] == "iface" else w[1:]) if n != "lo"]
        return list(dict.fromkeys(out))

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        return []


_KV_RE = re.compile(r"""^(\s*)([A-Z_][A-Z0-9_]*)=(["']?)(.*?)\3\s*$""")


class Ifcfg(NetConfig):
    """ifcfg-NAME files (Red Hat network-scripts, SUSE wicked): HWADDR binds to a MAC."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _parse(self, guest: Guest, path: str) -> dict[str, str]:
        out = {}
        for line in guest.read_lines(path):
            m = _KV_RE.match(line)
            if m:
                out[m.group(2)] = m.group(4)
        return out

    def _name(self, guest: Guest, path: str) -> str:
        return self._parse(guest, path).get("DEVICE") or posixpath.basename(path)[len("ifcfg-"):]

    def _paths(self, guest: Guest) -> list[str]:
        return [p for p in config_files(guest, self.directory, "ifcfg-")
                if not p.endswith("/ifcfg-lo")]

    def names(self, guest: Guest) -> list[str]:
        return [self._name(guest, p) for p in self._paths(guest)]

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        changed = []
        for path in self._paths(guest):
            mac = mac_for(self._name(guest, path), pins, sole_mac)

            def edit(text: str, mac: str | None = mac) -> str:
                out = []
                for line in text.splitlines(keepends=True):
                    m = _KV_RE.match(line.rstrip("\n"))
                    if m and m.group(2) == "HWADDR" and mac and m.group(4).lower() != mac:
                        q = m.group(3)
                        line = f"{m.group(1)}HWADDR={q}{mac}{q}\n"
                    out.append(line)
                return "".join(out)

            if guest.edit_text(path, edit):
                changed.append(path)
        return changed


class NMKeyfile(NetConfig):
    """NetworkManager keyfiles: [connection] interface-name, [ethernet] mac-address."""

    DIR = "/etc/NetworkManager/system-connections"

    def _sections(self, text: str) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        section = ""
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1]
            elif "=" in s and not s.startswith("#"):
                k, v = s.split("=", 1)
                out.setdefault(section, {})[k.strip()] = v.strip()
        return out

    def names(self, guest: Guest) -> list[str]:
        out = []
        for path in config_files(guest, self.DIR):
            sec = self._sections(guest.read_text(path))
            name = sec.get("connection", {}).get("interface-name")
            if name and sec.get("connection", {}).get("type") in ("ethernet", "802-3-ethernet"):
                out.append(name)
        return out

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        changed = []
        for path in config_files(guest, self.DIR):
            sec = self._sections(guest.read_text(path))
            mac = mac_for(sec.get("connection", {}).get("interface-name"), pins, sole_mac)
            if not mac or "mac-address" not in sec.get("ethernet", {}):
                continue

            def edit(text: str, mac: str = mac) -> str:
                out, section = [], ""
                for line in text.splitlines(keepends=True):
                    s = line.strip()
                    if s.startswith("[") and s.endswith("]"):
                        section = s[1:-1]
                    elif section == "ethernet" and s.split("=", 1)[0].strip() == "mac-address":
                        line = f"mac-address={mac.upper()}\n"
                    out.append(line)
                return "".join(out)

            if guest.edit_text(path, edit):
                changed.append(path)
        return changed


class UdevPersistentNet(NetConfig):
    """Old udev's 70-persistent-net.rules: NAME bound to ATTR{address}."""

    PATH = "/etc/udev/rules.d/70-persistent-net.rules"
    NAME_RE = re.compile(r'NAME="([^"]+)"')
    ADDR_RE = re.compile(r'(ATTR\{address\}==")([^"]*)(")')

    def names(self, guest: Guest) -> list[str]:
        if not guest.is_file(self.PATH):
            return []
        return [m.group(1) for line in guest.read_lines(self.PATH)
                if not line.lstrip().startswith("#") and (m := self.NAME_RE.search(line))]

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        if not guest.is_file(self.PATH):
            return []
        by_name = {p.name: p.mac for p in pins}

        def edit(text: str) -> str:
            out = []
            for line in text.splitlines(keepends=True):
                m = self.NAME_RE.search(line)
                if m and m.group(1) in by_name and not line.lstrip().startswith("#"):
                    mac = by_name[m.group(1)]
                    line = self.ADDR_RE.sub(rf"\g<1>{mac}\g<3>", line)
                out.append(line)
            return "".join(out)

        return [self.PATH] if guest.edit_text(self.PATH, edit) else []

    @staticmethod
    def rule(pin: Pin) -> str:
        return (f'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{{address}}=="{pin.mac}", '
                f'ATTR{{type}}=="1", NAME="{pin.name}"\n')


def log_changes(kind: str, paths: list[str]) -> None:
    for p in paths:
        log.debug(f"{kind}: re-bound {p} to the target MAC")
