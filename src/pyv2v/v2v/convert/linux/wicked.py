"""wicked's native XML configuration (SUSE): /etc/wicked/ifconfig/*.xml.

A file holds one or more ``<interface>`` elements; each names its interface by ``<name>eth0</name>``
or by hardware, ``<name namespace="ethernet"><permanent-address>MAC</permanent-address></name>``.
`retarget` rewrites such a permanent-address when its interface is pinned (or, with one target
NIC, always).  `--mac MAC:ip:…` replaces the ``<ipv4:dhcp>``/``<ipv4:static>`` of the interface
(by its name or permanent-address) with a static address and default route; the DNS servers go
to NETCONFIG_DNS_STATIC_SERVERS as for SUSE's ifcfg files.  Parsed with entities, DTDs and
network access off; a file that does not parse is named in a warning and left alone.
wicked's ifcfg files are ifcfg.py's.
"""

from __future__ import annotations

import functools
import re

from .... import log
from ....errors import V2VError
from ....libvirt_xml import parse
from ...types import StaticIp
from ..guest import Guest
from .ifcfg import suse_static_dns
from .netconfig import Iface, NetConfig, Pin, config_files, mac_for, norm_mac

DIR = "/etc/wicked/ifconfig"
_IFACE_RE = re.compile(r"<interface\b[^>]*>.*?</interface>", re.S)
_IPV4_RE = re.compile(r"[ \t]*<ipv4:(dhcp|static)\b[^>]*?(?:/>|>.*?</ipv4:\1>)[ \t]*\n?", re.S)
# XML comments cannot hold "--" (netconfig.STATIC_MARK does)
MARK = "<!-- Written by pyv2v: static address from the command line (mac MAC:ip:) -->"
_PERM_RE = re.compile(r"(<permanent-address>\s*)([0-9A-Fa-f:]{17})(\s*</permanent-address>)")


def _interfaces(text: str, path: str) -> list[tuple[str | None, str | None]]:
    """(name, permanent MAC) per <interface> element."""
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    # wicked writes prefixed elements (<ipv4:static>) without declaring the prefixes.
    prefixes = sorted(set(re.findall(r"</?([A-Za-z_][\w.-]*):", body)))
    decl = "".join(f' xmlns:{p}="urn:wicked:{p}"' for p in prefixes)
    try:
        root = parse(f"<wicked{decl}>{body}</wicked>", path)
    except V2VError as e:
        log.warning(f"{e}: its interfaces are not pinned")
        return []
    out: list[tuple[str | None, str | None]] = []
    for iface in root.iter("interface"):
        name_el = iface.find("name")
        if name_el is None:
            continue
        perm = name_el.findtext("permanent-address")
        if perm is not None:
            out.append((None, norm_mac(perm)))
        elif (name_el.text or "").strip():
            out.append(((name_el.text or "").strip(), None))
    return out


def _set_mac(mac: str, text: str) -> str:
    return _PERM_RE.sub(rf"\g<1>{mac}\g<3>", text)


class Wicked(NetConfig):
    style = "wicked"

    def _paths(self, guest: Guest) -> list[str]:
        return [p for p in config_files(guest, DIR) if p.endswith(".xml")]

    def interfaces(self, guest: Guest) -> list[Iface]:
        return [Iface(name, mac, path, self.style) for path in self._paths(guest)
                for name, mac in _interfaces(guest.read_text(path), path)]

    def retarget(self, guest: Guest, pins: list[Pin], sole_mac: str | None) -> list[str]:
        changed = []
        for path in self._paths(guest):
            if not any(mac for _, mac in _interfaces(guest.read_text(path), path)):
                continue
            mac = mac_for(None, pins, sole_mac)
            if mac and guest.edit_text(path, functools.partial(_set_mac, mac)):
                changed.append(path)
        return changed


    def write_static(self, guest: Guest, name: str | None, mac: str, ip: StaticIp
                     ) -> list[str] | None:
        if ":" in ip.address:
            return None
        for path in self._paths(guest):
            text = guest.read_text(path)
            for m in _IFACE_RE.finditer(text):
                if not any((n is not None and n == name) or (pm is not None and pm == mac)
                           for n, pm in _interfaces(m.group(0), path)):
                    continue
                route = (f"    <route><destination>0.0.0.0/0</destination><nexthop><gateway>"
                         f"{ip.gateway}</gateway></nexthop></route>\n" if ip.gateway else "")
                static = (f"  {MARK}\n  <ipv4:static>\n    <address><local>{ip.address}/"
                          f"{ip.prefix}</local></address>\n{route}  </ipv4:static>\n")
                block = _IPV4_RE.sub("", m.group(0))
                block = block[: -len("</interface>")].rstrip(" ") + static + "</interface>"
                guest.write(path, text[: m.start()] + block + text[m.end():])
                return [path, *suse_static_dns(guest, "/etc/sysconfig/network", ip.dns)]
        return None
