"""Keep the guest's network working on the target's virtio NICs.

Interface names are pinned to the target MACs, so the NIC that was ``eth0`` (or ``ens192``) on
the source is ``eth0`` again whatever the new driver and PCI slot: a systemd ``.link`` file per
pinned name where udev reads them, else a line in udev's 70-persistent-net.rules.  The names come
from the target NIC plans (``source_dev``); when no plan names one (``-i disk``) and the guest's
configuration names exactly one physical interface, that name goes to the first target NIC.
Then every configuration format the family uses is re-bound from old MACs to the target MACs.
"""

from __future__ import annotations

from .... import log
from ...types import TargetNicPlan
from ..guest import Guest
from .netconfig import PHYSICAL_NAME_RE, NetConfig, Pin, UdevPersistentNet, log_changes

LINK_DIR = "/etc/systemd/network"
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


def configured_names(guest: Guest, configs: tuple[NetConfig, ...]) -> list[str]:
    names: list[str] = []
    for c in configs:
        names += c.names(guest)
    return list(dict.fromkeys(names))


def plan_pins(nics: tuple[TargetNicPlan, ...], configured: list[str]) -> list[Pin]:
    pins = [Pin(n.source_dev, n.mac.lower()) for n in nics if n.source_dev]
    if pins or not nics:
        return pins
    physical = [n for n in configured if PHYSICAL_NAME_RE.match(n)]
    if len(physical) == 1:
        log.debug(f"the guest configures one interface, {physical[0]}: pinning it to the first "
                  "target NIC")
        return [Pin(physical[0], nics[0].mac.lower())]
    if physical:
        log.warning("the guest configures several interfaces (" + ", ".join(physical) + ") "
                    "and the source did not say which NIC was which: their names were not "
                    "pinned to the target's MACs")
    return []


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
    all_configs = (*configs, UdevPersistentNet())
    pins = plan_pins(nics, configured_names(guest, all_configs))
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
    return pins
