"""systemd-networkd (.network) and systemd-udevd (.link) files in /etc/systemd/network.

A .network file's ``[Match]`` selects interfaces by ``Name=`` (space-separated names or globs,
``!`` negates) and/or ``MACAddress=``/``PermanentMACAddress=``; a .link file's ``[Match]
MACAddress=`` with ``[Link] Name=`` is a naming rule.  Exact names are pinned like any other
style's; globs match whatever name the NIC gets.  `retarget` rewrites the MACs in ``[Match]`` of
files whose interface is pinned (or, with one target NIC, of MAC-only files).  Our own pin files
(10-pyv2v-*.link) are skipped.  Addresses, routes and DNS ([Network], [Address], [Route]) are
never touched.
"""

from __future__ import annotations

import re

from ...types import StaticIp
from ..guest import Guest
from .netconfig import (
    STATIC_MARK,
    Iface,
    NetConfig,
    Pin,
    config_files,
    edit_ini_keys,
    is_glob,
    mac_for,
    norm_mac,
)

DIR = "/etc/systemd/network"
OWN_PREFIX = "10-pyv2v-"
ENABLED = "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
MAC_KEYS = ("MACAddress", "PermanentMACAddress")
_MAC_TOKEN = re.compile(r"(?i)\b([0-9a-f]{2}(?:[:-][0-9a-f]{2}){5})\b")


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values…]}} (a key may repeat; later lines add to the list)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for line in text.splitlines():
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1]
        elif "=" in s:
            k, v = s.split("=", 1)
            out.setdefault(section, {}).setdefault(k.strip(), []).append(v.strip())
    return out


def _tokens(values: list[str]) -> list[str]:
    return [t for v in values for t in v.split()]


class Networkd(NetConfig):
    style = "networkd"

    def _paths(self, guest: Guest) -> list[str]:
        return [p for p in config_files(guest, DIR)
                if p.endswith((".network", ".link"))
                and not p.rsplit("/", 1)[1].startswith(OWN_PREFIX)]

    @staticmethod
    def _match(sec: dict[str, dict[str, list[str]]]) -> tuple[list[str], list[str]]:
        match = sec.get("Match", {})
        names = [n for n in _tokens(match.get("Name", [])) if not n.startswith("!")]
        macs = [m for k in MAC_KEYS for t in _tokens(match.get(k, []))
                if (m := norm_mac(t))]
        return names, macs

    def interfaces(self, guest: Guest) -> list[Iface]:
        out: list[Iface] = []
        for path in self._paths(guest):
            sec = sections(guest.read_text(path))
            names, macs = self._match(sec)
            mac = macs[0] if len(macs) == 1 else None
            if path.endswith(".link"):
                link = sec.get("Link", {}).get("Name", [])
                if link:
                    out.append(Iface(link[-1], mac, path, "systemd .link", naming_only=True))
                continue
            out += [Iface(n, mac, path, self.style, pattern=is_glob(n)) for n in names]
            if not names and mac:
                out.append(Iface(None, mac, path, self.style))
        return out

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        changed = []
        for path in self._paths(guest):
            sec = sections(guest.read_text(path))
            names, macs = self._match(sec)
            if len(macs) != 1:
                continue      # no MAC to re-bind, or a list we cannot map one-to-one
            if path.endswith(".link"):
                names = sec.get("Link", {}).get("Name", [])[-1:]
            exact = [n for n in names if not is_glob(n)]
            if len(exact) > 1:
                continue
            mac = mac_for(exact[0] if exact else None, pins, sole_mac)
            if not mac or mac == macs[0]:
                continue

            def edit(text: str, mac: str = mac) -> str:
                return edit_ini_keys(text, "Match", MAC_KEYS,
                                     lambda line: _MAC_TOKEN.sub(mac, line))

            if guest.edit_text(path, edit):
                changed.append(path)
        return changed

    def available(self, guest: Guest) -> bool:
        return guest.exists(ENABLED)

    def write_static(self, guest: Guest, name: str | None, mac: str, ip: StaticIp
                     ) -> list[str] | None:
        """A 05- file: networkd applies the first matching .network file, so it wins."""
        path = f"{DIR}/05-pyv2v-{mac.replace(':', '')}.network"
        text = (f"# {STATIC_MARK}\n[Match]\nMACAddress={mac}\n\n[Network]\n"
                f"Address={ip.address}/{ip.prefix}\n"
                + (f"Gateway={ip.gateway}\n" if ip.gateway else "")
                + "".join(f"DNS={d}\n" for d in ip.dns))
        guest.mkdir_p(DIR)
        guest.write(path, text)
        return [path]
