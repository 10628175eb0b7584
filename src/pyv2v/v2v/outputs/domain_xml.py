"""Build the target libvirt domain XML from a `TargetMeta` (used by -o local and -o libvirt).

Written entirely through the declarative model (libvirt_xml.domain), in document order.  Disk
device names come from the converter's records (`TargetDisk.target_dev`); the names of the
removable drives it adds come from `devnames`, the one place for letters and bus prefixes.
"""

from __future__ import annotations

from ... import devnames
from ...libvirt_xml import to_string
from ...libvirt_xml.domain import (
    ConsoleXML,
    ControllerXML,
    DevicesXML,
    DiskXML,
    DomainXML,
    GraphicsXML,
    InputXML,
    InterfaceXML,
    MemballoonXML,
    RngXML,
    SerialXML,
    TimerXML,
    TpmXML,
    VideoXML,
)
from ..types import TargetMeta

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BUS_XML = {"virtio-blk": "virtio", "virtio-scsi": "scsi", "ide": "ide", "sata": "sata"}
NET_MODEL = {"virtio-net": "virtio", "e1000": "e1000", "rtl8139": "rtl8139"}


def _removables(meta: TargetMeta, devices: DevicesXML) -> None:
    """Empty CD-ROM/floppy drives: CD-ROMs on SATA (q35) or IDE (pc, from hdc), floppies fd*."""
    caps = meta.caps
    cd_bus = "sata" if caps.machine == "q35" else "ide"
    # On q35 with virtio-scsi the disks already use sd* names: the CD-ROMs follow them.
    first_cd = 2 if cd_bus == "ide" else (len(meta.disks) if caps.block_bus == "virtio-scsi"
                                          else 0)
    cds = floppies = 0
    for r in meta.source.removables:
        if r.kind == "cdrom":
            dev, bus = devnames.target_dev(cd_bus, first_cd + cds), cd_bus
            cds += 1
        else:
            dev, bus = devnames.target_dev("fdc", floppies), "fdc"
            floppies += 1
        devices.add(DiskXML(type="file", device=r.kind, driver_name="qemu", driver_type="raw",
                            target_dev=dev, target_bus=bus, readonly=True))


def build_domain(meta: TargetMeta, *, domain_type: str = "kvm", emulator: str | None = None
                 ) -> str:
    """The domain XML; `domain_type` "kvm" or "qemu" (TCG) and `emulator` as the target host
    runs them (-o libvirt asks its connection; file outputs write kvm and no emulator)."""
    src, caps = meta.source, meta.caps
    dom = DomainXML(type=domain_type, name=meta.name)
    dom.set_memory_kib(src.memory // 1024)
    dom.vcpu = src.vcpus
    c = src.cpu
    if c.sockets and c.cores and c.threads and c.sockets * c.cores * c.threads == src.vcpus:
        dom.cpu.set_topology(c.sockets, c.cores, c.threads)
    dom.os.set(type="hvm", arch=caps.arch, machine=caps.machine)
    if caps.firmware == "uefi":
        dom.os.set(loader=OVMF_CODE, loader_type="pflash", loader_readonly="yes",
                   nvram_template=OVMF_VARS)
    on = "acpi" in src.features or caps.acpi, "apic" in src.features or caps.acpi
    dom.features.create().set(acpi=on[0], apic=on[1])
    if caps.hyperv:  # Windows: the enlightenments virt-v2v writes
        dom.features.set(hyperv_mode="custom", hyperv_relaxed="on", hyperv_vapic="on",
                         hyperv_spinlocks="on", hyperv_spinlocks_retries=8191)
    clock = caps.clock or src.clock
    dom.clock.offset = clock if clock in ("utc", "localtime") else "utc"
    if caps.hyperv:
        for timer in (TimerXML(name="rtc", tickpolicy="catchup"),
                      TimerXML(name="pit", tickpolicy="delay"), TimerXML(name="hpet", present="no"),
                      TimerXML(name="hypervclock", present="yes")):
            dom.clock.append(timer)
    dom.set(on_poweroff="destroy", on_reboot="restart", on_crash="restart")

    devices = dom.devices.create()
    if emulator:
        devices.emulator = emulator
    if caps.block_bus == "virtio-scsi":
        devices.add(ControllerXML(type="scsi", index=0, model="virtio-scsi"))
    virtio = caps.block_bus in ("virtio-blk", "virtio-scsi")
    for d in meta.disks:
        devices.add(DiskXML(type="file", device="disk", driver_name="qemu", driver_type=d.format,
                            driver_discard="unmap" if virtio else None, source_file=d.path,
                            target_dev=d.target_dev, target_bus=BUS_XML[caps.block_bus]))
    _removables(meta, devices)
    for n in meta.nics:
        bridge = n.vnet_type == "bridge"
        devices.add(InterfaceXML(type=n.vnet_type, mac=n.mac,
                                 source_bridge=n.network if bridge else None,
                                 source_network=None if bridge else n.network,
                                 model=NET_MODEL.get(caps.net_bus, "virtio")))
    if caps.video == "qxl":  # as the reference writes each model
        devices.add(VideoXML(model="qxl", ram=65536, heads=1))
    else:
        devices.add(VideoXML(model=caps.video, vram=16384, heads=1))
    devices.add(GraphicsXML(type="vnc", autoport="yes", port=-1))
    devices.add(InputXML(type="tablet", bus="usb"))
    if caps.virtio_rng:
        devices.add(RngXML(model="virtio", backend_model="random", backend="/dev/urandom"))
    devices.add(MemballoonXML(model="virtio" if caps.virtio_balloon else "none"))
    if meta.tpm:  # emulated by swtpm on the target host
        devices.add(TpmXML(model="tpm-crb", backend_type="emulator", backend_version="2.0"))
    devices.add(SerialXML(type="pty", target_port=0))
    devices.add(ConsoleXML(type="pty", target_type="serial", target_port=0))
    return to_string(dom.node)
