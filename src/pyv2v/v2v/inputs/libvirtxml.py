"""`-i libvirtxml`: a libvirt domain XML file (including virt-p2v's physical.xml) as the source.

Disks may be local files, block devices, or NBD network disks on ``localhost:PORT`` (how p2v
hands its disks over through ssh reverse forwards, PROTOCOL.md §5).  NBD disks on any other host
are refused, like the reference converter.
"""

from __future__ import annotations

import os

from lxml import etree

from ...errors import V2VError
from ...libvirt_xml import parse_file
from ...libvirt_xml.domain import DiskXML, DomainXML
from ..types import Source, SourceCpu, SourceDisk, SourceNic, SourceRemovable
from .bandwidth import throttle
from .base import Input, InputOptions
from .disk import probe_image

MAX_VCPUS = 4096


def _disk_location(d: DiskXML, i: int) -> tuple[str, bool]:
    """(location, is_local_path) for a <disk>."""
    kind = d.type or "file"
    if kind == "file":
        if not d.source_file:
            raise V2VError(f"disk {i}: <disk type='file'> has no <source file=…>")
        return d.source_file, True
    if kind == "block":
        if not d.source_dev:
            raise V2VError(f"disk {i}: <disk type='block'> has no <source dev=…>")
        return d.source_dev, True
    if kind == "network":
        if d.source_protocol != "nbd":
            raise V2VError(f"disk {i}: network protocol {d.source_protocol!r} is not supported "
                           "(only nbd)")
        if d.host_transport == "unix" and d.host_socket:
            return f"nbd+unix:///?socket={d.host_socket}", False
        if d.host_name != "localhost":
            raise V2VError(f"disk {i}: NBD server must be on localhost "
                           f"(found host {d.host_name!r})")
        if not d.host_port:
            raise V2VError(f"disk {i}: NBD <host> has no port")
        if not 1 <= d.host_port <= 65535:
            raise V2VError(f"disk {i}: NBD <host> port {d.host_port} is out of range")
        return f"nbd://localhost:{d.host_port}", False
    raise V2VError(f"disk {i}: <disk type={kind!r}> is not supported")


class LibvirtXMLInput(Input):
    name = "libvirtxml"
    description = "a libvirt domain XML file (e.g. virt-p2v physical.xml)"
    network_bandwidth = True  # NBD disks: raw ones paced by the pull, others via a rate proxy

    def source(self, opts: InputOptions) -> Source:
        if len(opts.args) != 1:
            raise V2VError("-i libvirtxml: expecting exactly one XML file name")
        path = opts.args[0]
        if not os.path.isfile(path):
            raise V2VError(f"libvirt XML file not found: {path}")
        base_dir = os.path.dirname(os.path.abspath(path))
        return source_from_domain(parse_file(path), opts, path, base_dir)


def source_from_domain(root: etree._Element, opts: InputOptions, path: str,
                       base_dir: str) -> Source:
    """A parsed <domain> as a Source (also used by -i libvirt); `path` names it in errors,
    relative disk paths are resolved against `base_dir`."""
    if root.tag != "domain":
        raise V2VError(f"{path}: the root element is <{root.tag}>, expected <domain>")
    dom = DomainXML(root)
    name = opts.name or dom.name
    if not name:
        raise V2VError(f"{path}: the domain has no <name>")

    disks: list[SourceDisk] = []
    removables: list[SourceRemovable] = []
    for d in dom.devices.disks:
        if d.device in ("cdrom", "floppy"):
            removables.append(SourceRemovable(kind=d.device, target_dev=d.target_dev))
            continue
        if d.device not in (None, "disk", "lun"):
            continue
        i = len(disks)
        loc, local = _disk_location(d, i)
        if local and not os.path.isabs(loc):
            loc = os.path.join(base_dir, loc)
        fmt = d.driver_type or None
        if fmt == "aio":
            fmt = None
        if local:
            fmt, size = probe_image(loc, fmt, opts.allow_external_files)
        else:
            fmt, size = fmt or "raw", None
            if fmt != "raw":  # raw: paced by the server's own pull (v2v/ratelimit.py)
                loc = throttle(loc, opts)  # --bandwidth: bits/s on the network read
        disks.append(SourceDisk(index=i, location=loc, format=fmt,
                                target_dev=d.target_dev, size=size))
    if not disks:
        raise V2VError(f"{path}: the domain has no disks (<disk device='disk'>)")

    nics = []
    for n in dom.devices.interfaces:
        vtype = "bridge" if n.type == "bridge" else "network"
        vnet = (n.source_bridge if vtype == "bridge" else n.source_network) or "default"
        nics.append(SourceNic(mac=n.mac, vnet=vnet, vnet_type=vtype, model=n.model,
                              source_dev=n.target_dev))

    firmware = "unknown"
    if dom.os.is_uefi():
        firmware = "uefi"
    elif dom.os.firmware == "bios" or dom.os.loader_type == "rom":
        firmware = "bios"
    memory = dom.memory_bytes() or 1024**3
    if memory <= 0 or not 1 <= (dom.vcpu or 1) <= MAX_VCPUS:  # found by fuzzing
        raise V2VError(f"{path}: invalid <memory> ({memory} bytes) or <vcpu> ({dom.vcpu}; "
                       f"1 to {MAX_VCPUS})")
    cpu = dom.cpu
    return Source(
        name=name, hypervisor=dom.type or "unknown", memory=memory,
        vcpus=dom.vcpu or 1, disks=tuple(disks), nics=tuple(nics),
        removables=tuple(removables),
        cpu=SourceCpu(vendor=cpu.vendor, model=cpu.model, sockets=cpu.sockets,
                      cores=cpu.cores, threads=cpu.threads),
        firmware=firmware, features=tuple(dom.features.names()), clock=dom.clock.offset,
        tpm=bool(dom.devices.tpms),
    )
