"""The libvirt `<domain>` pyv2v reads (inputs) and writes (outputs, p2v's physical.xml).

Top-level parts are sub-objects: ``dom.cpu`` (vendor, model, topology), ``dom.os`` (type, arch,
machine, firmware, loader, nvram), ``dom.clock``, ``dom.features`` and ``dom.devices`` (see
devices.py).  Device classes are re-exported here for readers of one import.
"""

from __future__ import annotations

from .devices import (
    ConsoleXML,
    ControllerXML,
    DevicesXML,
    DiskXML,
    GraphicsXML,
    InputXML,
    InterfaceXML,
    MemballoonXML,
    RngXML,
    SerialXML,
    TpmXML,
    VideoXML,
)
from .model import XMLChild, XMLChildren, XMLFlag, XMLObject, XMLProperty

__all__ = ["ClockXML", "ConsoleXML", "ControllerXML", "CPUXML", "DevicesXML", "DiskXML",
           "DomainXML", "FeaturesXML", "GraphicsXML", "InputXML", "InterfaceXML",
           "MemballoonXML", "OSXML", "RngXML", "SerialXML", "TimerXML", "TpmXML", "VideoXML"]

UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2,
         "mb": 1000**2, "g": 1024**3, "gib": 1024**3, "gb": 1000**3, "t": 1024**4,
         "tib": 1024**4, "tb": 1000**4}


class CPUXML(XMLObject):
    TAG = "cpu"
    match = XMLProperty("./@match")
    mode = XMLProperty("./@mode")
    vendor = XMLProperty("./vendor")
    model = XMLProperty("./model")
    model_fallback = XMLProperty("./model/@fallback")
    sockets = XMLProperty("./topology/@sockets", int)
    cores = XMLProperty("./topology/@cores", int)
    threads = XMLProperty("./topology/@threads", int)

    def set_topology(self, sockets: int, cores: int, threads: int) -> None:
        self.sockets, self.cores, self.threads = sockets, cores, threads


class OSXML(XMLObject):
    TAG = "os"
    firmware = XMLProperty("./@firmware")  # "efi" | "bios": libvirt's firmware autoselection
    type = XMLProperty("./type", default="hvm")
    arch = XMLProperty("./type/@arch")
    machine = XMLProperty("./type/@machine")
    loader = XMLProperty("./loader")
    loader_type = XMLProperty("./loader/@type")
    loader_readonly = XMLProperty("./loader/@readonly")
    nvram = XMLProperty("./nvram")
    nvram_template = XMLProperty("./nvram/@template")

    def is_uefi(self) -> bool:
        return self.firmware == "efi" or self.loader_type == "pflash"


class TimerXML(XMLObject):
    TAG = "timer"
    name = XMLProperty("./@name")
    present = XMLProperty("./@present")
    tickpolicy = XMLProperty("./@tickpolicy")


class ClockXML(XMLObject):
    TAG = "clock"
    offset = XMLProperty("./@offset")
    basis = XMLProperty("./@basis")
    adjustment = XMLProperty("./@adjustment", int)
    timers = XMLChildren("./timer", TimerXML)


class FeaturesXML(XMLObject):
    TAG = "features"
    acpi = XMLFlag("./acpi")
    apic = XMLFlag("./apic")
    pae = XMLFlag("./pae")
    hyperv_mode = XMLProperty("./hyperv/@mode")
    hyperv_relaxed = XMLProperty("./hyperv/relaxed/@state")
    hyperv_vapic = XMLProperty("./hyperv/vapic/@state")
    hyperv_spinlocks = XMLProperty("./hyperv/spinlocks/@state")
    hyperv_spinlocks_retries = XMLProperty("./hyperv/spinlocks/@retries", int)

    def names(self) -> list[str]:
        """Every feature element present, including ones not declared here (hyperv, vmport…)."""
        el = self.lookup()
        return [] if el is None else [str(c.tag) for c in el if isinstance(c.tag, str)]


class DomainXML(XMLObject):
    TAG = "domain"
    type = XMLProperty("./@type")
    name = XMLProperty("./name")
    uuid = XMLProperty("./uuid")
    memory = XMLProperty("./memory", int)
    memory_unit = XMLProperty("./memory/@unit", default="KiB")
    current_memory = XMLProperty("./currentMemory", int)
    current_memory_unit = XMLProperty("./currentMemory/@unit", default="KiB")
    vcpu = XMLProperty("./vcpu", int, default=1)
    cpu = XMLChild("./cpu", CPUXML)
    os = XMLChild("./os", OSXML)
    clock = XMLChild("./clock", ClockXML)
    features = XMLChild("./features", FeaturesXML)
    on_poweroff = XMLProperty("./on_poweroff")
    on_reboot = XMLProperty("./on_reboot")
    on_crash = XMLProperty("./on_crash")
    devices = XMLChild("./devices", DevicesXML)

    def set_memory_kib(self, kib: int) -> None:
        """`<memory>` and `<currentMemory>` in KiB."""
        self.memory, self.memory_unit = kib, "KiB"
        self.current_memory, self.current_memory_unit = kib, "KiB"

    def memory_bytes(self) -> int | None:
        val = self.memory
        if val is None:
            return None
        unit = (self.memory_unit or "KiB").lower()
        return int(val) * UNITS.get(unit, 1024)
