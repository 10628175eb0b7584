"""NetworkManager keyfiles (/etc/NetworkManager/system-connections): ethernet connections.

``[connection] interface-name`` names the interface, ``[ethernet] mac-address`` binds to a MAC
(what `retarget` rewrites); a connection with neither applies to any ethernet device.
``cloned-mac-address`` *sets* the MAC and is left alone.  Addresses, routes and DNS
(``[ipv4] address1=…``) are not touched.
"""

from __future__ import annotations

import uuid

from ...types import StaticIp
from ..guest import Guest
from .netconfig import (
    STATIC_MARK,
    Iface,
    NetConfig,
    Pin,
    config_files,
    edit_ini_keys,
    mac_for,
    norm_mac,
)

ETHERNET = ("ethernet", "802-3-ethernet")


def sections(text: str) -> dict[str, dict[str, str]]:
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


class NMKeyfile(NetConfig):
    style = "NetworkManager"
    DIR = "/etc/NetworkManager/system-connections"

    def interfaces(self, guest: Guest) -> list[Iface]:
        out = []
        for path in config_files(guest, self.DIR):
            sec = sections(guest.read_text(path))
            conn = sec.get("connection", {})
            if conn.get("type") not in ETHERNET:
                continue
            mac = norm_mac(sec.get("ethernet", sec.get("802-3-ethernet", {}))
                           .get("mac-address", "").split(";")[0])
            name = conn.get("interface-name")
            if name or mac:
                out.append(Iface(name, mac, path, self.style))
        return out

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        changed = []
        for path in config_files(guest, self.DIR):
            sec = sections(guest.read_text(path))
            mac = mac_for(sec.get("connection", {}).get("interface-name"), pins, sole_mac)
            if not mac or "mac-address" not in sec.get("ethernet", {}):
                continue

            def edit(text: str, mac: str = mac) -> str:
                return edit_ini_keys(text, "ethernet", ("mac-address",),
                                     lambda _line: f"mac-address={mac.upper()}\n")

            if guest.edit_text(path, edit):
                changed.append(path)
        return changed

    def available(self, guest: Guest) -> bool:
        return guest.is_dir("/etc/NetworkManager")

    def write_static(self, guest: Guest, name: str | None, mac: str, ip: StaticIp
                     ) -> list[str] | None:
        """A connection bound to the MAC that outranks the others (autoconnect-priority)."""
        cid = f"pyv2v-{name or mac.replace(':', '')}"
        fam, other = ("ipv6", "ipv4") if ":" in ip.address else ("ipv4", "ipv6")
        text = (f"# {STATIC_MARK}\n[connection]\nid={cid}\n"
                f"uuid={uuid.uuid5(uuid.NAMESPACE_OID, 'pyv2v ' + mac)}\ntype=ethernet\n"
                + (f"interface-name={name}\n" if name else "")
                + "autoconnect-priority=100\n\n"
                f"[ethernet]\nmac-address={mac.upper()}\n\n[{fam}]\nmethod=manual\n"
                f"address1={ip.address}/{ip.prefix}"
                + (f",{ip.gateway}" if ip.gateway else "") + "\n"
                + (f"dns={';'.join(ip.dns)};\n" if ip.dns else "")
                + f"\n[{other}]\nmethod={'disabled' if other == 'ipv6' else 'auto'}\n")
        path = f"{self.DIR}/{cid}.nmconnection"
        guest.mkdir_p(self.DIR)
        guest.write(path, text)
        guest.chmod(0o600, path)       # NetworkManager ignores keyfiles others can read
        return [path]
