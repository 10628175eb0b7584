"""Netplan YAML (/etc/netplan/*.yaml): ethernets entries, their set-name and match.macaddress.

Read with a small indentation-based line scanner rather than a YAML library so the rewrite
changes one value on one line and keeps comments, order and quoting of the rest of the file.
Block-style YAML (what installers and cloud-init write) is understood; flow-style mappings
(``match: {macaddress: …}``) are rewritten by a plain textual substitution of the MAC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..guest import Guest
from .netconfig import NetConfig, Pin, config_files, mac_for

_KEY_RE = re.compile(r"^(\s*)([A-Za-z0-9_.\-\"']+):\s*(.*?)\s*$")
_MAC_VALUE_RE = re.compile(r"""^(\s*macaddress:\s*)(["']?)([0-9A-Fa-f:]{17})(["']?)(.*)$""")
_FLOW_MAC_RE = re.compile(r"(macaddress:\s*[\"']?)([0-9A-Fa-f:]{17})")


@dataclass
class _Entry:
    id: str
    set_name: str | None = None
    match_lines: list[int] = field(default_factory=list)   # lines holding match: macaddress
    flow_lines: list[int] = field(default_factory=list)    # lines holding match: {…}

    @property
    def name(self) -> str | None:
        if self.set_name:
            return self.set_name
        return None if any(c in self.id for c in "*?[") else self.id


def _unquote(v: str) -> str:
    return v.strip().strip("\"'")


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
            if value.startswith("{"):
                cur.flow_lines.append(i)
            else:
                match_indent = indent
        elif key == "macaddress" and match_indent is not None:
            cur.match_lines.append(i)
        elif key == "set-name":
            cur.set_name = _unquote(value)
    return entries


class Netplan(NetConfig):
    DIR = "/etc/netplan"

    def _paths(self, guest: Guest) -> list[str]:
        return [p for p in config_files(guest, self.DIR) if p.endswith((".yaml", ".yml"))]

    def names(self, guest: Guest) -> list[str]:
        return [e.name for p in self._paths(guest) for e in scan(guest.read_text(p)) if e.name]

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
