"""Keep the guest's network working on the target's virtio NICs.

Interface names are pinned to the target MACs, so the NIC the guest configured as ``eth0`` (or
``ens192``) is ``eth0`` again whatever the new driver and PCI slot: a systemd ``.link`` file per
pinned name where udev reads them, else a line in udev's 70-persistent-net.rules.  The names are
the ones the guest's own configuration uses (the family's styles plus the styles every systemd
guest may use, COMMON_CONFIGS), matched to the target NICs by nicmatch.py.  Then every
configuration is re-bound from old MACs to the target MACs, and a NIC given a static address
(``--mac MAC:ip:…``) gets it in the guest's own style: the first style the guest configures
interfaces with, else the first whose software it runs, in the family's order.
"""

from __future__ import annotations

from .... import log
from ...types import TargetNicPlan
from ..guest import Guest
from .netconfig import Iface, NetConfig, Pin, UdevPersistentNet, log_changes
from .networkd import Networkd
from .nicmatch import plan_pins

LINK_DIR = "/etc/systemd/network"
# Styles any family's guest may use besides its own (family tables: debian.py, redhat.py …).
COMMON_CONFIGS: tuple[NetConfig, ...] = (Networkd(), UdevPersistentNet())
LINK_SUPPORT = ("/usr/lib/systemd/network/99-default.link", "/lib/systemd/network/99-default.link")


def link_file(pin: Pin) -> str:
    return ("# Written by pyv2v: keep the interface name this NIC had before conversion.\n"
            "[Match]\n"
            f"MACAddress={pin.mac}\n"
            "\n"
            "[Link]\n"
            f"Name={pin.name}\n")


def link_path(pin: Pin) -> str:
    return f"{LINK_DIR}/10-pyv2v-{pin.name}.link"


def configured(guest: Guest, configs: tuple[NetConfig, ...]) -> list[Iface]:
    return [i for c in configs for i in c.interfaces(guest)]


def _write_udev_rules(guest: Guest, pins: list[Pin]) -> None:
    path = UdevPersistentNet.PATH
    old = guest.read_lines(path) if guest.is_file(path) else []
    names = {p.name for p in pins}
    keep = [ln for ln in old if not any(f'NAME="{n}"' in ln for n in names)]
    guest.mkdir_p("/etc/udev/rules.d")
    guest.write(path, "\n".join(keep + ["# Written by pyv2v"]) + "\n"
                + "".join(UdevPersistentNet.rule(p) for p in pins))


def configure_network(guest: Guest, nics: tuple[TargetNicPlan, ...],
                      configs: tuple[NetConfig, ...]) -> list[Pin]:
    """Pin names and re-bind configurations; returns the pins made."""
    all_configs = (*configs, *COMMON_CONFIGS)
    pins = plan_pins(nics, configured(guest, all_configs))
    if pins and any(guest.is_file(p) for p in LINK_SUPPORT):
        guest.mkdir_p(LINK_DIR)
        for pin in pins:
            guest.write(link_path(pin), link_file(pin))
            log.debug(f"{link_path(pin)}: {pin.name} ← {pin.mac}")
    elif pins:
        _write_udev_rules(guest, pins)
        log.debug(f"{UdevPersistentNet.PATH}: " + ", ".join(f"{p.name} ← {p.mac}" for p in pins))
    sole_mac = nics[0].mac.lower() if len(nics) == 1 else None
    for c in all_configs:
        log_changes(type(c).__name__, c.retarget(guest, pins, sole_mac))
    write_static(guest, nics, pins, all_configs)
    return pins


def write_static(guest: Guest, nics: tuple[TargetNicPlan, ...], pins: list[Pin],
                 configs: tuple[NetConfig, ...]) -> None:
    used = [c for c in configs if c.interfaces(guest)]
    styles = used + [c for c in configs if c not in used and c.available(guest)]
    for n in nics:
        if n.static is None:
            continue
        mac, ip = n.mac.lower(), n.static
        name = next((p.name for p in pins if p.mac == mac), None)
        what = f"{ip.address}/{ip.prefix} on the NIC {mac}" + (f" ({name})" if name else "")
        for c in styles:
            files = c.write_static(guest, name, mac, ip)
            if files:
                log.message(f"Static address {what}: {c.style}, {', '.join(files)}")
                break
        else:
            log.warning(f"--mac {mac}:ip:…: no network configuration style of this guest could "
                        f"take {what}" + ("" if name else " (its interface name in the guest is "
                                          "unknown)") + ": not configured")
