"""Network mapping: -n/-b/--mac rules applied to the source NICs, and target MAC addresses.

Rules follow virt-v2v: ``-n OUT`` (or ``-b OUT``) maps every network (bridge) without a more
specific rule, ``-n IN:OUT`` maps one source network, ``--mac MAC:network|bridge:OUT`` maps one
NIC by its MAC, and ``--mac MAC:ip:ADDR[,GW[,LEN[,DNS,…]]]`` asks the converter to give that
NIC a static address (as the reference; LEN defaults to 24 for IPv4, 64 for IPv6).  A NIC
without a MAC gets a generated locally administered 52:54:00 address so the converter can pin
its name to it and the output can declare it.
"""

from __future__ import annotations

import ipaddress
import random
import re

from ..errors import V2VError
from .types import SourceNic, StaticIp, TargetNicPlan

MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", re.I)


class NetworkMap:
    def __init__(self) -> None:
        self.default: dict[str, str] = {}           # vnet_type -> out
        self.by_name: dict[tuple[str, str], str] = {}  # (vnet_type, in) -> out
        self.by_mac: dict[str, tuple[str, str]] = {}   # mac -> (vnet_type, out)
        self.static: dict[str, StaticIp] = {}          # mac -> --mac MAC:ip:…

    def add(self, vnet_type: str, rule: str) -> None:
        if not rule:
            raise V2VError(f"-{vnet_type[0]}: empty network mapping")
        if ":" in rule:
            src, _, out = rule.partition(":")
            if not src or not out:
                raise V2VError(f"-{vnet_type[0]} {rule}: expected IN:OUT")
            self.by_name[(vnet_type, src)] = out
        else:
            self.default[vnet_type] = rule

    def add_mac(self, rule: str) -> None:
        m = re.match(r"^((?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}):(network|bridge|ip):(.+)$", rule)
        if not m:
            raise V2VError(f"--mac {rule}: expected MAC:network:NAME, MAC:bridge:NAME or "
                           "MAC:ip:ADDR[,GW[,LEN[,DNS,…]]]")
        if m.group(2) == "ip":
            self.static[m.group(1).lower()] = parse_static(rule, m.group(3))
        else:
            self.by_mac[m.group(1).lower()] = (m.group(2), m.group(3))

    def plan(self, nics: tuple[SourceNic, ...]) -> tuple[TargetNicPlan, ...]:
        out = []
        for n in nics:
            mac = (n.mac or "").lower()
            if mac and not MAC_RE.match(mac):
                raise V2VError(f"source NIC has an invalid MAC address {n.mac!r}")
            vtype, net = n.vnet_type, n.vnet
            if mac and mac in self.by_mac:
                vtype, net = self.by_mac[mac]
            elif (vtype, n.vnet) in self.by_name:
                net = self.by_name[(vtype, n.vnet)]
            elif vtype in self.default:
                net = self.default[vtype]
            out.append(TargetNicPlan(mac=mac or generate_mac(), source_dev=n.source_dev,
                                     network=net, vnet_type=vtype, static=self.static.get(mac)))
        missing = sorted(set(self.static) - {p.mac for p in out})
        if missing:
            raise V2VError(f"--mac {missing[0]}:ip:…: the source has no NIC with that MAC")
        return tuple(out)


def parse_static(rule: str, spec: str) -> StaticIp:
    """ADDR[,GW[,LEN[,DNS,…]]] (GW may be empty) → StaticIp; one-line errors."""
    parts = [p.strip() for p in spec.split(",")]
    try:
        addr = ipaddress.ip_address(parts[0])
        gw = ipaddress.ip_address(parts[1]) if len(parts) > 1 and parts[1] else None
        dns = tuple(str(ipaddress.ip_address(p)) for p in parts[3:] if p)
    except ValueError as e:
        raise V2VError(f"--mac {rule}: {e}") from e
    default = 24 if addr.version == 4 else 64
    length = parts[2] if len(parts) > 2 and parts[2] else str(default)
    if not length.isdigit() or not 0 < int(length) <= addr.max_prefixlen:
        raise V2VError(f"--mac {rule}: prefix length {length!r} is not 1-{addr.max_prefixlen}")
    return StaticIp(str(addr), int(length), str(gw) if gw else None, dns)


def generate_mac() -> str:
    tail = [random.randint(0, 255) for _ in range(3)]  # noqa: S311 - not security relevant
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)
