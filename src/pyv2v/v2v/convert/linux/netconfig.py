"""What every network configuration style shares: the records and the contract, plus ifupdown
and udev's persistent-net rules (the two styles that are a few lines each).

A style (`NetConfig` subclass, one module per style: ifcfg.py, nmkeyfile.py, netplan.py,
networkd.py) reports the interfaces the guest configures as `Iface` records — the name the
configuration expects and, where it says so, the MAC it binds to — and can `retarget` "match this
MAC" settings at the target's MACs.  Settings that *set* a MAC (ifcfg MACADDR/LLADDR, ifupdown
hwaddress, netplan macaddress outside match) are left alone: they still work on the new NIC.
Edits are textual and keep everything else as it was.  Which name goes to which NIC is decided
from these records in nicmatch.py.
"""

from __future__ import annotations

import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .... import log
from ...types import StaticIp
from ..guest import Guest

PHYSICAL_NAME_RE = re.compile(r"^(eth\d+|en[a-z0-9_]+|em\d+|p\d+p\d+[a-z0-9_]*)$")
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


@dataclass(frozen=True)
class Pin:
    name: str   # interface name in the guest ("eth0")
    mac: str    # the target NIC's MAC, lower case


@dataclass(frozen=True)
class Iface:
    """One interface a configuration file expects to find."""

    name: str | None          # the interface name it expects (None: any name, e.g. MAC-only)
    mac: str | None           # the MAC it binds to, lower case, if it binds to one
    path: str                 # where it is configured
    style: str                # "ifupdown", "networkd" … (for messages)
    pattern: bool = False     # `name` is a glob (networkd Name=en*): matches whatever it gets
    naming_only: bool = False  # a naming rule (udev, .link), not an address configuration

    @property
    def exact_name(self) -> str | None:
        return None if self.pattern else self.name


def norm_mac(value: str) -> str | None:
    """A MAC as lower-case colon form, or None if `value` is not one (dashes accepted)."""
    mac = value.strip().strip("\"'").lower().replace("-", ":")
    return mac if _MAC_RE.match(mac) else None


def is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def mac_for(name: str | None, pins: list[Pin], sole_mac: str | None) -> str | None:
    """The MAC a config for interface `name` should match: its pin's, else the only NIC's."""
    for p in pins:
        if p.name == name:
            return p.mac
    if name is None or PHYSICAL_NAME_RE.match(name):
        return sole_mac
    return None


class NetConfig(ABC):
    style: ClassVar[str] = ""

    @abstractmethod
    def interfaces(self, guest: Guest) -> list[Iface]:
        """The interfaces this style's files configure, in file order."""

    def names(self, guest: Guest) -> list[str]:
        """The exact interface names configured (no globs), without duplicates."""
        return list(dict.fromkeys(i.exact_name for i in self.interfaces(guest)
                                  if i.exact_name))

    @abstractmethod
    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        """Re-bind MAC matches to the target MACs; returns the files changed."""

    def write_static(self, guest: Guest, name: str | None, mac: str, ip: StaticIp
                     ) -> list[str] | None:
        """Configure `ip` on the NIC (`name` if known, `mac`) in this style: the files written,
        or None if this style cannot (or needs the name and it is unknown)."""
        return None

    def available(self, guest: Guest) -> bool:
        """Whether the guest runs this style's software (a configuration written would apply)."""
        return False


STATIC_MARK = "Written by pyv2v (--mac MAC:ip:…)"


def edit_ini_keys(text: str, section: str, keys: tuple[str, ...],
                  replace: Callable[[str], str]) -> str:
    """Rewrite the lines of `[section]` whose key is one of `keys` (NetworkManager keyfiles,
    systemd .network files), keeping every other line, comment and the layout."""
    out, current = [], ""
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            current = s[1:-1]
        elif current == section and s.split("=", 1)[0].strip() in keys:
            line = replace(line)
        out.append(line)
    return "".join(out)


def config_files(guest: Guest, directory: str, prefix: str = "", suffix: str = "") -> list[str]:
    if not guest.is_dir(directory):
        return []
    return [posixpath.join(directory, n) for n in guest.ls(directory)
            if n.startswith(prefix) and n.endswith(suffix) and not n.endswith(("~", ".bak"))
            and guest.is_file(posixpath.join(directory, n))]


class Ifupdown(NetConfig):
    """Debian's /etc/network/interfaces (+ interfaces.d): configured by name only."""

    style = "ifupdown"

    def interfaces(self, guest: Guest) -> list[Iface]:
        main = ["/etc/network/interfaces"] if guest.is_file("/etc/network/interfaces") else []
        out: list[Iface] = []
        for path in main + config_files(guest, "/etc/network/interfaces.d"):
            for line in guest.read_lines(path):
                w = line.split()
                if len(w) >= 2 and w[0] in ("iface", "auto", "allow-hotplug", "allow-auto"):
                    out += [Iface(n, None, path, self.style)
                            for n in (w[1:2] if w[0] == "iface" else w[1:]) if n != "lo"]
        return out

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        return []

    def available(self, guest: Guest) -> bool:
        return guest.is_file("/etc/network/interfaces")

    def write_static(self, guest: Guest, name: str | None, mac: str, ip: StaticIp
                     ) -> list[str] | None:
        path = "/etc/network/interfaces"
        if name is None:
            return None
        fam = "inet6" if ":" in ip.address else "inet"
        old = guest.read_lines(path) if guest.is_file(path) else []
        out, skipping = [], False
        for line in old:     # the NIC's old stanza of this family is commented out, not deleted
            w = line.split()
            if w and not line[0].isspace():
                skipping = w[:3] == ["iface", name, fam]
            out.append(f"# pyv2v: {line}" if skipping and w else line)
        out += ["", f"# {STATIC_MARK}", f"auto {name}", f"iface {name} {fam} static",
                f"    address {ip.address}/{ip.prefix}"]
        out += [f"    gateway {ip.gateway}"] if ip.gateway else []
        out += [f"    dns-nameservers {' '.join(ip.dns)}"] if ip.dns else []
        guest.write(path, "\n".join(out) + "\n")
        return [path]


class UdevPersistentNet(NetConfig):
    """Old udev's 70-persistent-net.rules: NAME bound to ATTR{address}."""

    style = "udev rules"
    PATH = "/etc/udev/rules.d/70-persistent-net.rules"
    NAME_RE = re.compile(r'NAME="([^"]+)"')
    ADDR_RE = re.compile(r'(ATTR\{address\}==")([^"]*)(")')

    def interfaces(self, guest: Guest) -> list[Iface]:
        if not guest.is_file(self.PATH):
            return []
        out = []
        for line in guest.read_lines(self.PATH):
            if line.lstrip().startswith("#") or not (m := self.NAME_RE.search(line)):
                continue
            a = self.ADDR_RE.search(line)
            out.append(Iface(m.group(1), norm_mac(a.group(2)) if a else None, self.PATH,
                             self.style, naming_only=True))
        return out

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
