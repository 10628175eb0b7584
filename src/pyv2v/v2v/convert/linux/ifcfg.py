"""ifcfg-NAME files (Red Hat network-scripts and NetworkManager's ifcfg-rh, SUSE wicked).

The interface is DEVICE= (else the file name's suffix); HWADDR= binds it to a MAC and is what
`retarget` rewrites.  MACADDR=/LLADDR= *set* the MAC and are left alone.

`--mac MAC:ip:…` is written in the dialect of the directory: Red Hat's (BOOTPROTO=none, ONBOOT,
IPADDR + PREFIX, GATEWAY, DNSn in the ifcfg file) or SUSE's (wicked, ifcfg(5): BOOTPROTO=static
— its "none" means no address at all — STARTMODE=auto, IPADDR=ADDR/LEN; the default route in
ifroute-NAME; DNS servers in NETCONFIG_DNS_STATIC_SERVERS of /etc/sysconfig/network/config).
"""

from __future__ import annotations

import posixpath
import re

from ...types import StaticIp
from ..guest import Guest
from .netconfig import STATIC_MARK, Iface, NetConfig, Pin, config_files, is_glob, mac_for, norm_mac

_KV_RE = re.compile(r"""^(\s*)([A-Z_][A-Z0-9_]*)=(["']?)(.*?)\3\s*$""")


def parse(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = _KV_RE.match(line)
        if m:
            out[m.group(2)] = m.group(4)
    return out


class Ifcfg(NetConfig):
    style = "ifcfg"

    def __init__(self, directory: str, suse: bool = False) -> None:
        self.directory = directory
        self.suse = suse

    def _name(self, kv: dict[str, str], path: str) -> str:
        return kv.get("DEVICE") or posixpath.basename(path)[len("ifcfg-"):]

    def _paths(self, guest: Guest) -> list[str]:
        return [p for p in config_files(guest, self.directory, "ifcfg-")
                if not p.endswith("/ifcfg-lo")]

    def interfaces(self, guest: Guest) -> list[Iface]:
        out = []
        for path in self._paths(guest):
            kv = parse(guest.read_lines(path))
            name = self._name(kv, path)
            out.append(Iface(name, norm_mac(kv.get("HWADDR", "")), path, self.style,
                             pattern=is_glob(name)))
        return out

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        changed = []
        for path in self._paths(guest):
            mac = mac_for(self._name(parse(guest.read_lines(path)), path), pins, sole_mac)

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

    def available(self, guest: Guest) -> bool:
        return guest.is_dir(self.directory)

    def write_static(self, guest: Guest, name: str | None, mac: str, ip: StaticIp
                     ) -> list[str] | None:
        """ifcfg-NAME gets the static address keys of this dialect (its other keys kept)."""
        if name is None or ":" in ip.address:
            return None                   # IPv6 keys differ (IPV6ADDR…): not written here
        path = f"{self.directory}/ifcfg-{name}"
        if self.suse:
            want = {"BOOTPROTO": "static", "STARTMODE": "auto",
                    "IPADDR": f"{ip.address}/{ip.prefix}"}
            drop = {"NETMASK", "PREFIXLEN", "ONBOOT", *want}
            fresh = [f"HWADDR='{mac}'"]
            fmt = "{}='{}'"
        else:
            want = {"BOOTPROTO": "none", "ONBOOT": "yes", "IPADDR": ip.address,
                    "PREFIX": str(ip.prefix)}
            if ip.gateway:
                want["GATEWAY"] = ip.gateway
            want.update({f"DNS{i}": d for i, d in enumerate(ip.dns, 1)})
            drop = {"NETMASK", "DHCP_HOSTNAME", *want}
            fresh = [f"DEVICE={name}", f"HWADDR={mac}"]
            fmt = "{}={}"
        old = guest.read_lines(path) if guest.is_file(path) else fresh
        keep = [ln for ln in old
                if not ((m := _KV_RE.match(ln)) and m.group(2) in drop)
                and not re.match(r"^\s*DNS\d+=", ln)]
        guest.write(path, "\n".join([*keep, f"# {STATIC_MARK}"]
                                    + [fmt.format(k, v) for k, v in want.items()]) + "\n")
        written = [path]
        if self.suse:
            written += self._suse_route_and_dns(guest, name, ip)
        return written

    def _suse_route_and_dns(self, guest: Guest, name: str, ip: StaticIp) -> list[str]:
        written = []
        if ip.gateway:
            route = f"{self.directory}/ifroute-{name}"
            old = guest.read_lines(route) if guest.is_file(route) else []
            keep = [ln for ln in old if not re.match(r"^\s*(default|0\.0\.0\.0(/0)?)\s", ln)]
            guest.write(route, "\n".join([*keep, f"# {STATIC_MARK}",
                                          f"default {ip.gateway} - {name}"]) + "\n")
            written.append(route)
        return written + suse_static_dns(guest, self.directory, ip.dns)


def suse_static_dns(guest: Guest, directory: str, dns: tuple[str, ...]) -> list[str]:
    """SUSE's DNS servers for a static setup: NETCONFIG_DNS_STATIC_SERVERS in DIR/config (the
    line replaced where it is, else appended); the file written, if any."""
    if not dns:
        return []
    conf = f"{directory}/config"
    line = f'NETCONFIG_DNS_STATIC_SERVERS="{" ".join(dns)}"'
    old = guest.read_lines(conf) if guest.is_file(conf) else []
    out = [line if (m := _KV_RE.match(ln)) and m.group(2) == "NETCONFIG_DNS_STATIC_SERVERS"
           else ln for ln in old]
    if line not in out:
        out += [f"# {STATIC_MARK}", line]
    guest.write(conf, "\n".join(out) + "\n")
    return [conf]
