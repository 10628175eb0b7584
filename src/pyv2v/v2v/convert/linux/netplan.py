"""Netplan YAML (/etc/netplan/*.yaml): ethernets entries, their set-name and match (macaddress,
name).  An entry with no match configures the interface named by its id; one with a match
configures whatever matches (renamed by set-name if given).

Read with a small indentation-based line scanner rather than a YAML library so the rewrite
changes one value on one line and keeps comments, order and quoting of the rest of the file.
Block-style YAML (what installers and cloud-init write) is understood; flow-style mappings
(``match: {macaddress: …}``) are rewritten by a plain textual substitution of the MAC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...types import StaticIp
from ..guest import Guest
from .netconfig import Iface, NetConfig, Pin, config_files, is_glob, mac_for, norm_mac

_KEY_RE = re.compile(r"^(\s*)([A-Za-z0-9_.\-\"']+):\s*(.*?)\s*$")
_MAC_VALUE_RE = re.compile(r"""^(\s*macaddress:\s*)(["']?)([0-9A-Fa-f:]{17})(["']?)(.*)$""")
_FLOW_MAC_RE = re.compile(r"(macaddress:\s*[\"']?)([0-9A-Fa-f:]{17})")


@dataclass
class _Entry:
    id: str
    set_name: str | None = None
    match_lines: list[int] = field(default_factory=list)   # lines holding match: macaddress
    flow_lines: list[int] = field(default_factory=list)    # lines holding match: {…}
    has_match: bool = False
    match_name: str | None = None
    mac: str | None = None

    @property
    def name(self) -> str | None:
        """The name the interface will have (a glob if match: name: is one), or None."""
        if self.set_name:
            return self.set_name
        if self.has_match:
            return self.match_name
        return self.id


def _unquote(v: str) -> str:
    return v.strip().strip("\"'")


def _flow_match(entry: _Entry, value: str) -> None:
    for item in value.strip("{} ").split(","):
        k, _, v = item.partition(":")
        if k.strip() == "macaddress":
            entry.mac = norm_mac(v)
        elif k.strip() == "name":
            entry.match_name = _unquote(v)


def scan(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    eth_indent = entry_indent = match_indent = None
    cur: _Entry | None = None
    for i, line in enumerate(text.splitlines()):
        body = line.split("#", 1)[0].rstrip()
        m = _KEY_RE.match(body)
        if not body.strip() or not m:
            continue
        indent, key, value = len(m.group(1)), _unquote(m.group(2)), m.group(3)
        if eth_indent is not None and indent <= eth_indent:
            eth_indent = entry_indent = match_indent = None
            cur = None
        if key == "ethernets" and eth_indent is None:
            eth_indent = indent
            continue
        if eth_indent is None:
            continue
        if entry_indent is None or indent <= entry_indent:
            entry_indent, match_indent = indent, None
            cur = _Entry(key)
            entries.append(cur)
            continue
        assert cur is not None
        if match_indent is not None and indent <= match_indent:
            match_indent = None
        if key == "match":
            cur.has_match = True
            if value.startswith("{"):
                cur.flow_lines.append(i)
                _flow_match(cur, value)
            else:
                match_indent = indent
        elif key == "macaddress" and match_indent is not None:
            cur.match_lines.append(i)
            cur.mac = norm_mac(value)
        elif key == "name" and match_indent is not None:
            cur.match_name = _unquote(value)
        elif key == "set-name":
            cur.set_name = _unquote(value)
    return entries


class Netplan(NetConfig):
    style = "netplan"
    DIR = "/etc/netplan"

    def _paths(self, guest: Guest) -> list[str]:
        return [p for p in config_files(guest, self.DIR) if p.endswith((".yaml", ".yml"))]

    def interfaces(self, guest: Guest) -> list[Iface]:
        return [Iface(e.name, e.mac, p, self.style, pattern=bool(e.name and is_glob(e.name)))
                for p in self._paths(guest) for e in scan(guest.read_text(p))
                if e.name or e.mac]

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        changed = []
        for path in self._paths(guest):
            entries = scan(guest.read_text(path))

            def edit(text: str, entries: list[_Entry] = entries) -> str:
                lines = text.splitlines(keepends=True)
                for e in entries:
                    mac = mac_for(e.name, pins, sole_mac)
                    if not mac:
                        continue
                    for i in e.match_lines:
                        nl = "\n" if lines[i].endswith("\n") else ""
                        lines[i] = _MAC_VALUE_RE.sub(rf"\g<1>\g<2>{mac}\g<4>\g<5>",
                                                     lines[i].rstrip("\n")) + nl
                    for i in e.flow_lines:
                        lines[i] = _FLOW_MAC_RE.sub(rf"\g<1>{mac}", lines[i])
                return "".join(lines)

            if guest.edit_text(path, edit):
                changed.append(path)
        return changed

    def available(self, guest: Guest) -> bool:
        return bool(self._paths(guest))

    def write_static(self, guest: Guest, name: str | None, mac: str, ip: StaticIp
                     ) -> list[str] | None:
        """Through the renderer netplan generates for: NetworkManager keyfile or networkd."""
        from .networkd import Networkd
        from .nmkeyfile import NMKeyfile

        nm = any(re.search(r"^\s*renderer:\s*NetworkManager", guest.read_text(p), re.M)
                 for p in self._paths(guest))
        return (NMKeyfile() if nm else Networkd()).write_static(guest, name, mac, ip)
