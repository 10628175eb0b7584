"""Which interface name the guest's configuration expects on which target NIC.

The source's own name for a NIC (``source_dev``: physical.xml's is what the p2v *live* system
called the card) is only a hint: the names pinned are the ones the guest's configuration uses,
matched to the target NICs (in source order) by these rules, first match wins:

1. by MAC — a configuration that binds a name to a MAC (ifcfg HWADDR, NetworkManager
   mac-address, netplan match, networkd [Match] MACAddress, udev/.link rules) names that NIC;
   a MAC-only configuration claims its NIC without needing a name;
2. by the source's name — a configured name equal to a NIC's ``source_dev``;
3. by order — the remaining configured physical-looking names (natural order: eth2 < eth10)
   go to the remaining NICs in source order when there are as many of each (a warning says so
   when that is more than one); otherwise none of them is pinned and each is named in a warning.

Naming rules alone (udev persistent-net, .link) take part in 1 and 2 but are not configurations
to carry over, so a stale rule does not make 3 ambiguous and is not warned about.
"""

from __future__ import annotations

import re

from .... import log
from ...types import TargetNicPlan
from .netconfig import PHYSICAL_NAME_RE, Iface, Pin


def _natural(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def plan_pins(nics: tuple[TargetNicPlan, ...], ifaces: list[Iface]) -> list[Pin]:
    if not nics:
        return []
    macs = [n.mac.lower() for n in nics]
    pinned: dict[str, str] = {}          # name → target MAC
    claimed: set[str] = set()            # target MACs some configuration binds to
    for i in ifaces:                                               # 1. by MAC
        if i.mac and i.mac in macs:
            claimed.add(i.mac)
            name = i.exact_name
            if name and name not in pinned and i.mac not in pinned.values():
                pinned[name] = i.mac
    free = [m for m in macs if m not in claimed]
    known = {i.exact_name for i in ifaces if i.exact_name}
    for n in nics:                                                 # 2. by the source's name
        mac = n.mac.lower()
        if n.source_dev and n.source_dev in known and n.source_dev not in pinned \
                and mac in free:
            pinned[n.source_dev] = mac
            free.remove(mac)
        elif n.source_dev and n.source_dev not in known:
            log.debug(f"the source calls NIC {mac} {n.source_dev}, a name the guest's "
                      "configuration does not use: not pinned")
    wanted = sorted({i.exact_name for i in ifaces
                     if i.exact_name and not i.naming_only and i.exact_name not in pinned
                     and (PHYSICAL_NAME_RE.match(i.exact_name) or i.mac)}, key=_natural)
    if wanted and len(wanted) == len(free):                       # 3. by order
        pairs = list(zip(wanted, free, strict=True))
        if len(pairs) > 1:
            log.warning("the guest configures " + ", ".join(wanted) + " and nothing says "
                        "which source NIC each was: pinned in order, "
                        + ", ".join(f"{a}={b}" for a, b in pairs) + " (check, or use --mac)")
        pinned.update(pairs)
    elif wanted:
        for name in wanted:
            where = sorted({f"{i.path} ({i.style})" for i in ifaces if i.exact_name == name})
            log.warning(f"the guest configures interface {name} in {', '.join(where)}, but "
                        f"it could not be matched to one of the {len(nics)} target NIC(s) by "
                        "MAC, by the source's name or by order: its name was not pinned, so "
                        "that configuration may not apply on the converted guest")
    order = {m: k for k, m in enumerate(macs)}
    return sorted((Pin(name, mac) for name, mac in pinned.items()), key=lambda p: order[p.mac])
