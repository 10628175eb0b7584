"""`-o libvirt` (the default output): the disks as volumes of a libvirt storage pool, then a domain.

`-oc URI` (default ``qemu:///system``) is the libvirt connection, `-os POOL` (default
``default``) the storage pool, which must be active and have a local directory (types dir, fs,
netfs), as virt-v2v requires.  At setup, before any conversion work, the output refuses with
one line when the URI cannot be reached, a domain with the guest's name exists (never replaced,
as in virt-v2v: rename with -on), the pool is missing, inactive, not a directory pool or full, or
a volume NAME-sdX exists; then it creates each disk's volume through libvirt
(`storageVolCreateXML`: sparse unless -oa preallocated, format from -of, mode 0600) — so a
read-only pool directory is refused here too.  qemu-img writes into the volume's path (-n).

The domain XML (domain_xml.build_domain) is defined last, on commit, with the domain type the
target runs: ``kvm`` only where the connection offers KVM and, for a local connection, KVM
really works here (pyv2v.accel: present ≠ working), else ``qemu`` (TCG); the emulator comes from
the connection's domain capabilities, and a UEFI guest's OVMF loader must be one it lists.  A NIC
whose libvirt network (or, for a local connection, host bridge) does not exist on the target is
one warning naming it and the --network/--bridge mapping, not a failure: the domain is defined.
Until commit, the `Target`'s abort (also run on error, Ctrl-C, SIGTERM) deletes every volume
this run created and undefines the domain if it got defined: nothing stays allocated or defined.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from ... import accel, log, process
from ...devnames import drive_letters
from ...errors import InternalError, V2VError
from ..types import Source, TargetMeta
from .base import CopyTarget, Destination, Output, Target
from .domain_xml import OVMF_CODE, build_domain

DEFAULT_URI = "qemu:///system"
DEFAULT_POOL = "default"
DIR_POOL_TYPES = ("dir", "fs", "netfs")
MIN_FREE = 1024 * 1024  # a pool with less than this available is full


def libvirt_module() -> Any:
    """The libvirt bindings (Debian python3-libvirt), with libvirt's own stderr printing off:
    errors reach the user once, through V2VError."""
    try:
        import libvirt
    except ImportError:
        raise V2VError("-i libvirt and -o libvirt need the libvirt Python bindings "
                       "(apt-get install python3-libvirt)") from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def err_text(e: Exception) -> str:
    """libvirt's message for `e`, on one line."""
    msg = str(e.get_error_message() if hasattr(e, "get_error_message") else e) or repr(e)
    return " ".join(msg.split())


def connect(uri: str) -> Any:
    lv = libvirt_module()
    try:
        return lv.open(uri)
    except lv.libvirtError as e:
        raise V2VError(f"-o libvirt: cannot connect to libvirt at {uri}: {err_text(e)}") from None


def is_local(uri: str) -> bool:
    host = urlsplit(uri).hostname
    return host in (None, "", "localhost", "127.0.0.1", "::1")


class VolumeDestination(Destination):
    """A volume this run creates in the pool; `location` is its path on the target host."""

    def __init__(self, pool: Any, pool_dir: str, name: str, format: str, preallocate: bool
                 ) -> None:
        super().__init__(os.path.join(pool_dir, name), format)
        self.pool, self.pool_dir, self.name, self.preallocate = pool, pool_dir, name, preallocate
        self.vol: Any = None

    def create(self, size: int) -> None:
        lv = libvirt_module()
        alloc = size if self.preallocate else 0
        qcow2 = self.format == "qcow2"
        # qcow2 as -o local writes it (compat 1.1: libvirt's default is 0.10); preallocation
        # of a qcow2 volume is metadata only, and libvirt does it only when asked by flag
        xml = (f"<volume><name>{escape(self.name)}</name>"
               f"<capacity unit='bytes'>{size}</capacity>"
               f"<allocation unit='bytes'>{alloc}</allocation>"
               f"<target><format type='{self.format}'/>"
               + ("<compat>1.1</compat>" if qcow2 else "")
               + "<permissions><mode>0600</mode></permissions></target></volume>")
        flags = lv.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA if qcow2 and self.preallocate else 0
        try:
            self.vol = self.pool.createXML(xml, flags)
            self.location = self.vol.path()
        except lv.libvirtError as e:
            raise V2VError(f"-o libvirt: cannot create volume {self.name} in pool "
                           f"{self.pool.name()}: {err_text(e)}") from None
        log.debug(f"-o libvirt: created volume {self.location} ({size} bytes)")

    def copy_target(self, size: int) -> CopyTarget:
        if self.vol is None:
            self.create(size)
        return CopyTarget(self.location, self.format, create=False)

    def space_dir(self) -> str:
        return self.pool_dir

    def commit(self) -> None:
        if self.vol is None:
            raise InternalError(f"volume {self.name} was never written")

    def abort(self) -> None:
        vol, self.vol = self.vol, None
        if vol is not None:
            try:
                vol.delete(0)
            except libvirt_module().libvirtError as e:
                log.warning(f"could not delete volume {self.location}: {err_text(e)}")


class LibvirtTarget(Target):
    """The volumes, then the domain: defined on commit, undefined again by abort."""

    def __init__(self, disks: tuple[VolumeDestination, ...], conn: Any, pool: Any) -> None:
        super().__init__(disks)
        self.conn, self.pool = conn, pool
        self.domain_xml: str | None = None
        self.domain: Any = None

    def commit(self) -> None:
        lv = libvirt_module()
        if self.domain_xml is None:
            raise InternalError("-o libvirt: commit before the domain XML was made")
        for d in self.disks:
            d.commit()
        try:
            self.pool.refresh(0)
            self.domain = self.conn.defineXML(self.domain_xml)
        except lv.libvirtError as e:
            raise V2VError(f"-o libvirt: could not define the domain: {err_text(e)}") from None
        process.cancel_cleanup(self._hook)
        self.conn.close()

    def abort(self) -> None:
        dom, self.domain = self.domain, None
        if dom is not None:
            try:
                dom.undefineFlags(libvirt_module().VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt_module().libvirtError:
                pass
        super().abort()
        try:
            self.conn.close()
        except libvirt_module().libvirtError:
            pass


class LibvirtOutput(Output):
    name = "libvirt"
    description = "a libvirt domain with its disks in a storage pool"
    accepts_conn = True

    @property
    def uri(self) -> str:
        return self.opts.conn or DEFAULT_URI

    def precheck(self) -> None:
        super().precheck()
        if self.opts.overwrite:
            raise V2VError("-o libvirt: --overwrite is not supported: an existing domain or "
                           "volume is never replaced (rename the guest with -on)")

    def setup(self, name: str, source: Source) -> Target:
        lv = libvirt_module()
        conn = connect(self.uri)
        pool_name = self.opts.storage or DEFAULT_POOL
        try:
            try:
                conn.lookupByName(name)
                raise V2VError(f"-o libvirt: a libvirt domain called {name} already exists on "
                               f"{self.uri}: rename the guest with -on, or remove it with "
                               f"virsh undefine {name}")
            except lv.libvirtError:
                pass
            pool, pool_dir = self._pool(conn, pool_name)
            vols = [f"{name}-sd{drive_letters(d.index)}" for d in source.disks]
            existing = set(pool.listVolumes())
            for v in vols:
                if v in existing:
                    raise V2VError(f"-o libvirt: volume {v} already exists in pool {pool_name}: "
                                   "rename the guest with -on")
        except BaseException:
            conn.close()
            raise
        dests = tuple(VolumeDestination(pool, pool_dir, v, self.format,
                                        self.opts.allocation == "preallocated") for v in vols)
        target = LibvirtTarget(dests, conn, pool)
        try:
            for d, disk in zip(dests, source.disks, strict=True):
                if disk.size:
                    d.create(disk.size)  # now: a read-only or broken pool fails before work
        except BaseException:
            target.abort()
            raise
        return target

    def _pool(self, conn: Any, pool_name: str) -> tuple[Any, str]:
        lv = libvirt_module()
        try:
            pool = conn.storagePoolLookupByName(pool_name)
        except lv.libvirtError:
            raise V2VError(f"-o libvirt: storage pool {pool_name} does not exist on {self.uri} "
                           "(choose one with -os POOL)") from None
        if not pool.isActive():
            raise V2VError(f"-o libvirt: storage pool {pool_name} is not active "
                           f"(virsh pool-start {pool_name})")
        doc = etree.fromstring(pool.XMLDesc(0).encode(),
                               etree.XMLParser(resolve_entities=False, no_network=True))
        path = doc.findtext("./target/path")
        if doc.get("type") not in DIR_POOL_TYPES or not path:
            raise V2VError(f"-o libvirt: storage pool {pool_name} is not a directory pool "
                           f"(type {doc.get('type')}); use a pool of type dir")
        pool.refresh(0)
        available = pool.info()[3]
        if available < MIN_FREE:
            raise V2VError(f"-o libvirt: storage pool {pool_name} is full "
                           f"({available // 1024} KiB available in {path})")
        return pool, path

    def finalize(self, meta: TargetMeta, target: Target) -> list[str]:
        if not isinstance(target, LibvirtTarget):
            raise InternalError("-o libvirt: not a libvirt target")
        dtype, emulator, loaders = self.host_caps(target.conn, meta)
        if meta.caps.firmware == "uefi" and OVMF_CODE not in loaders:
            raise V2VError(f"-o libvirt: the target host offers no UEFI firmware {OVMF_CODE} "
                           f"for this UEFI guest (it has: {', '.join(loaders) or 'none'})")
        target.domain_xml = build_domain(meta, domain_type=dtype, emulator=emulator)
        for warning in missing_networks(target.conn, meta, self.uri):
            log.warning(warning)
        log.debug(f"-o libvirt: domain XML:\n{target.domain_xml}")
        return []

    def host_caps(self, conn: Any, meta: TargetMeta) -> tuple[str, str | None, list[str]]:
        """(domain type, emulator path, UEFI loaders) the target host offers for this guest."""
        lv = libvirt_module()
        want_kvm = not is_local(self.uri) or accel.detect().name == "kvm"
        for dtype in (("kvm", "qemu") if want_kvm else ("qemu",)):
            try:
                xml = conn.getDomainCapabilities(None, meta.caps.arch, meta.caps.machine,
                                                 dtype, 0)
            except lv.libvirtError as e:
                log.debug(f"-o libvirt: no {dtype} domains here: {err_text(e)}")
                continue
            doc = etree.fromstring(xml.encode(),
                                   etree.XMLParser(resolve_entities=False, no_network=True))
            loaders = [v.text or "" for v in doc.findall("./os/loader/value")]
            return dtype, doc.findtext("./path"), loaders
        raise V2VError(f"-o libvirt: {self.uri} cannot run {meta.caps.arch} guests "
                       f"(machine {meta.caps.machine})")


def missing_networks(conn: Any, meta: TargetMeta, uri: str) -> list[str]:
    """One warning per NIC whose libvirt network (or, on this host, bridge) does not exist on
    the target: the domain is defined anyway, but it will not start until the NIC is mapped."""
    lv = libvirt_module()
    warnings = []
    for n in meta.nics:
        if n.vnet_type == "bridge":
            if not is_local(uri) or os.path.isdir(f"/sys/class/net/{n.network}/bridge"):
                continue
            what = f"bridge {n.network}"
        else:
            try:
                conn.networkLookupByName(n.network)
                continue
            except lv.libvirtError:
                what = f"network {n.network}"
        warnings.append(f"-o libvirt: {uri} has no {what} for NIC {n.mac}: the guest is "
                        "defined but will not start until it exists (or map the NIC to one "
                        "that does with --network IN:OUT or --bridge IN:OUT)")
    return warnings
