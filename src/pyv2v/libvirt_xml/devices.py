"""The libvirt `<devices>` children pyv2v reads and writes, declared once (see model.py).

Each class maps the elements of one device kind; `DevicesXML` is the container, with a read view
per kind and `add()` to append a device built standalone (``DiskXML(type="file", …)``).
"""

from __future__ import annotations

from typing import TypeVar

from .model import XMLChildren, XMLFlag, XMLObject, XMLProperty


class DiskXML(XMLObject):
    TAG = "disk"
    type = XMLProperty("./@type")
    device = XMLProperty("./@device", default="disk")
    driver_name = XMLProperty("./driver/@name")
    driver_type = XMLProperty("./driver/@type")
    driver_discard = XMLProperty("./driver/@discard")
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
    readonly = XMLFlag("./readonly")


class InterfaceXML(XMLObject):
    TAG = "interface"
    type = XMLProperty("./@type")
    mac = XMLProperty("./mac/@address")
    source_network = XMLProperty("./source/@network")
    source_bridge = XMLProperty("./source/@bridge")
    target_dev = XMLProperty("./target/@dev")
    model = XMLProperty("./model/@type")


class ControllerXML(XMLObject):
    TAG = "controller"
    type = XMLProperty("./@type")
    index = XMLProperty("./@index", int)
    model = XMLProperty("./@model")


class VideoXML(XMLObject):
    TAG = "video"
    model = XMLProperty("./model/@type")
    vram = XMLProperty("./model/@vram", int)
    ram = XMLProperty("./model/@ram", int)
    heads = XMLProperty("./model/@heads", int)


class GraphicsXML(XMLObject):
    TAG = "graphics"
    type = XMLProperty("./@type")
    autoport = XMLProperty("./@autoport")
    port = XMLProperty("./@port", int)


class InputXML(XMLObject):
    TAG = "input"
    type = XMLProperty("./@type")
    bus = XMLProperty("./@bus")


class RngXML(XMLObject):
    TAG = "rng"
    model = XMLProperty("./@model")
    backend_model = XMLProperty("./backend/@model")
    backend = XMLProperty("./backend")


class MemballoonXML(XMLObject):
    TAG = "memballoon"
    model = XMLProperty("./@model")


class TpmXML(XMLObject):
    TAG = "tpm"
    model = XMLProperty("./@model")
    backend_type = XMLProperty("./backend/@type")
    backend_version = XMLProperty("./backend/@version")


class CharDeviceXML(XMLObject):
    """`<serial>`/`<console>`: a character device with a guest-side target."""

    type = XMLProperty("./@type")
    target_type = XMLProperty("./target/@type")
    target_port = XMLProperty("./target/@port", int)


class SerialXML(CharDeviceXML):
    TAG = "serial"


class ConsoleXML(CharDeviceXML):
    TAG = "console"


DevT = TypeVar("DevT", bound=XMLObject)


class DevicesXML(XMLObject):
    TAG = "devices"
    emulator = XMLProperty("./emulator")
    disks = XMLChildren("./disk", DiskXML)
    interfaces = XMLChildren("./interface", InterfaceXML)
    controllers = XMLChildren("./controller", ControllerXML)
    videos = XMLChildren("./video", VideoXML)
    graphics = XMLChildren("./graphics", GraphicsXML)
    inputs = XMLChildren("./input", InputXML)
    rngs = XMLChildren("./rng", RngXML)
    memballoons = XMLChildren("./memballoon", MemballoonXML)
    tpms = XMLChildren("./tpm", TpmXML)
    serials = XMLChildren("./serial", SerialXML)
    consoles = XMLChildren("./console", ConsoleXML)

    def add(self, dev: DevT) -> DevT:
        """Append a device (devices keep the order they are added in)."""
        return self.append(dev)
