"""Netplan YAML (/etc/netplan/*.yaml): ethernets entries, their set-name and match (macaddress,
name).  An entry with no match configures the interface named by its id; one with a match
configures whatever matches (renamed by set-name if given).

Read with a small indentation-based line scanner rather than a YAML library so the rewrite
changes one value on one line and keeps comments, order and quoting of the rest of the file.
Block-style YAML (what installers and cloud-init write) is understood; flow-style mappings
(``match: {macaddress: …}``) are rewritten by a plain textual substitution of the MAC.

`--mac MAC:ip:…` is written as netplan: the entries that configured that NIC (by name or by MAC)
are commented out line by line (``# pyv2v: …``: netplan concatenates sequences across files, so
an old ``addresses:`` would otherwise stay) and ``/etc/netplan/90-pyv2v-MAC.yaml`` (mode 0600)
defines the NIC again under the same id (bridges and bonds referring to it keep working), matched
by MAC, renamed to its pinned name, with the static address, default route and DNS.  Other keys of
the old entry (mtu, dhcp6…) are not carried over; its renderer is.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from ...types import StaticIp
from ..guest import Guest
from .netconfig import (
    STATIC_MARK,
    Iface,
    NetConfig,
    Pin,
    config_files,
    is_glob,
    mac_for,
    norm_mac,
)

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
    start: int = 0            # the line of its id
    end: int = 0              # its last line (its block ends there)
    parent: int = 0           # the line of the `ethernets:` holding it
    renderer: str | None = None

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
    eth_line = 0
    for i, line in enumerate(text.splitlines()):
        body = line.split("#", 1)[0].rstrip()
        if body.strip() and cur is not None and entry_indent is not None \
                and len(body) - len(body.lstrip()) > entry_indent:
            cur.end = i  # any content line indented under the entry (sequence items too)
        m = _KEY_RE.match(body)
        if not body.strip() or not m:
            continue
        indent, key, value = len(m.group(1)), _unquote(m.group(2)), m.group(3)
        if eth_indent is not None and indent <= eth_indent:
            eth_indent = entry_indent = match_indent = None
            cur = None
        if key == "ethernets" and eth_indent is None:
            eth_indent, eth_line = indent, i
            continue
        if eth_indent is None:
            continue
        if entry_indent is None or indent <= entry_indent:
            entry_indent, match_indent = indent, None
            cur = _Entry(key, start=i, end=i, parent=eth_line)
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
        elif key == "renderer" and match_indent is None:
            cur.renderer = _unquote(value)
    return entries


def comment_out(text: str, drop: list[_Entry], entries: list[_Entry]) -> str:
    """`text` with the blocks of `drop` commented out, and an `ethernets:` left empty too."""
    lines = text.splitlines(keepends=True)
    gone = {i for e in drop for i in range(e.start, e.end + 1)}
    gone |= {p for p in {e.parent for e in drop}
             if all(e in drop for e in entries if e.parent == p)}
    return "".join(f"# pyv2v: {ln}" if i in gone and ln.strip() else ln
                   for i, ln in enumerate(lines))


def static_yaml(entry_id: str, name: str | None, mac: str, ip: StaticIp,
                renderer: str | None) -> str:
    v6 = ":" in ip.address
    out = [f"# {STATIC_MARK}", "network:", "  version: 2", "  ethernets:",
           f"    {_yaml_str(entry_id)}:", "      match:", f'        macaddress: "{mac}"']
    out += [f"      set-name: {_yaml_str(name)}"] if name else []
    out += [f"      renderer: {renderer}"] if renderer else []
    out += [f"      dhcp{6 if v6 else 4}: false",
            f'      addresses: ["{ip.address}/{ip.prefix}"]']
    if ip.gateway:
        out += ["      routes:", f"        - to: {'::/0' if v6 else '0.0.0.0/0'}",
                f'          via: "{ip.gateway}"']
    if ip.dns:
        out += ["      nameservers:",
                "        addresses: [" + ", ".join(f'"{d}"' for d in ip.dns) + "]"]
    return "\n".join(out) + "\n"


def _yaml_str(s: str) -> str:
    return s if re.fullmatch(r"[A-Za-z0-9_.\-]+", s) else '"' + s.replace('"', '\\"') + '"'


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
        """As netplan: the NIC's old entries commented out, a 90-pyv2v file defines it again."""
        path = f"{self.DIR}/90-pyv2v-{mac.replace(':', '')}.yaml"
        changed: list[str] = []
        old: _Entry | None = None
        for p in self._paths(guest):
            if p == path:
                continue
            entries = scan(guest.read_text(p))
            hits = [e for e in entries if e.mac == mac or (name and e.name == name)]
            if not hits:
                continue
            old = old or hits[0]
            if guest.edit_text(p, functools.partial(comment_out, drop=hits, entries=entries)):
                changed.append(p)
        entry_id = old.id if old else (name or f"pyv2v-{mac.replace(':', '')}")
        guest.mkdir_p(self.DIR)
        guest.write(path, static_yaml(entry_id, name, mac, ip, old.renderer if old else None))
        guest.chmod(0o600, path)  # netplan warns about (and newer versions refuse) others' read
        return changed + [path]
