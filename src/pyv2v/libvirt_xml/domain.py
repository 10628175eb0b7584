"""The libvirt `<domain>` elements pyv2v reads (inputs) and writes (outputs), declared once."""

from __future__ import annotations

from lxml import etree

from .model import XMLChildren, XMLObject, XMLProperty

UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2,
         "mb": 1000**2, "g": 1024**3, "gib": 1024**3, "gb": 1000**3, "t": 1024**4,
         "tib": 1024**4, "tb": 1000**4}


class DiskXML(XMLObject):
    TAG = "disk"
    type = XMLProperty("./@type")
    device = XMLProperty("./@device", default="disk")
    driver_name = XMLProperty("./driver/@name")
    driver_type = XMLProperty("./driver/@type")
    source_file = XMLProperty("./source/@file")
    source_dev = XMLProperty("./source/@dev")
    source_protocol = XMLProperty("./source/@protocol")
    source_name = XMLProperty("./source/@name")
    host_name = XMLProperty("./source/host/@name")
    host_port = XMLProperty("./source/host/@port", int)
    host_transport = XMLProperty("./source/host/@transport")
    host_socket = XMLProperty("./source/host/@socket")
    target_dev = XMLProperty("./target/@dev")
    target_bus = XMLProperty("./target/@bus")


class InterfaceXML(XMLObject):
    TAG = "interface"
    type = XMLProperty("./@type")
    source_network = XMLProperty("./source/@network")
    source_bridge = XMLProperty("./source/@bridge")
    mac = XMLProperty("./mac/@address")
    model = XMLProperty("./model/@type")
    target_dev = XMLProperty("./target/@dev")


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
    cpu_match = XMLProperty("./cpu/@match")
    cpu_mode = XMLProperty("./cpu/@mode")
    cpu_vendor = XMLProperty("./cpu/vendor")
    cpu_model = XMLProperty("./cpu/model")
    cpu_sockets = XMLProperty("./cpu/topology/@sockets", int)
    cpu_cores = XMLProperty("./cpu/topology/@cores", int)
    cpu_threads = XMLProperty("./cpu/topology/@threads", int)
    os_type = XMLProperty("./os/type", default="hvm")
    os_arch = XMLProperty("./os/type/@arch")
    os_machine = XMLProperty("./os/type/@machine")
    os_firmware = XMLProperty("./os/@firmware")
    loader = XMLProperty("./os/loader")
    loader_type = XMLProperty("./os/loader/@type")
    loader_readonly = XMLProperty("./os/loader/@readonly")
    clock_offset = XMLProperty("./clock/@offset")
    disks = XMLChildren("./devices/disk", DiskXML)
    interfaces = XMLChildren("./devices/interface", InterfaceXML)

    def memory_bytes(self) -> int | None:
        val = self.memory
        if val is None:
            return None
        unit = (self.memory_unit or "KiB").lower()
        return int(val) * UNITS.get(unit, 1024)

    def features(self) -> list[str]:
        feats = self.node.find("./features")
        return [] if feats is None else [str(c.tag) for c in feats if isinstance(c.tag, str)]

    def devices(self) -> etree._Element:
        dev = self.node.find("./devices")
        return dev if dev is not None else etree.SubElement(self.node, "devices")

    def add_disk(self, **values: object) -> DiskXML:
        return DiskXML(etree.SubElement(self.devices(), "disk"), **values)

    def add_interface(self, **values: object) -> InterfaceXML:
        return InterfaceXML(etree.SubElement(self.devices(), "interface"), **values)
