"""Network mapping: -n/-b/--mac rules applied to the source NICs, and target MAC addresses.

Rules follow virt-v2v: ``-n OUT`` (or ``-b OUT``) maps every network (bridge) without a more
specific rule, ``-n IN:OUT`` maps one source network, ``--mac MAC:network|bridge:OUT`` maps one
NIC by its MAC.  A NIC without a MAC gets a generated locally administered 52:54:00 address so
the converter can pin its name to it and the output can declare it.
"""

from __future__ import annotations

import random
import re

from ..errors import V2VError
from .types import SourceNic, TargetNicPlan

MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", re.I)


class NetworkMap:
    def __init__(self) -> None:
        self.default: dict[str, str] = {}           # vnet_type -> out
        self.by_name: dict[tuple[str, str], str] = {}  # (vnet_type, in) -> out
        self.by_mac: dict[str, tuple[str, str]] = {}   # mac -> (vnet_type, out)

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
        m = re.match(r"^((?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}):(network|bridge):(.+)$", rule)
        if not m:
            raise V2VError(f"--mac {rule}: expected MAC:network:NAME or MAC:bridge:NAME")
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
                                     network=net, vnet_type=vtype))
        return tuple(out)


def generate_mac() -> str:
    tail = [random.randint(0, 255) for _ in range(3)]  # noqa: S311 - not security relevant
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)
