"""`-i libvirt -ic URI NAME`: a guest that a libvirt-managed hypervisor knows, read through libvirt.

The connection is opened read-only (`-ic`, default ``qemu:///system``).  The domain must exist
and be shut off: a running or paused guest is refused, as by the reference (its disks are
changing under us).  Its inactive XML (`VIR_DOMAIN_XML_INACTIVE`) becomes the Source through
the same parsing as `-i libvirtxml` (libvirtxml.source_from_domain); disks that are volumes of a
storage pool (``<disk type='volume'>``) are first resolved to their file or block device path
through libvirt.  Local disks are then checked like every local image (probe_image) and read
through the pipeline's read-only overlay.

``esx://`` and ``vpx://`` URIs go to inputs/esx.py (VMware through libvirt's ESX driver, disks
over HTTPS).  A remote connection (``qemu+ssh://``, ``xen+ssh://``, their ``+libssh`` forms)
goes to inputs/libvirt_ssh.py (metadata through libvirt's libssh transport, disks through
nbdkit's ssh plugin, host keys checked against pyv2v's known_hosts); other remote transports
are refused there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from ...errors import V2VError
from ...libvirt_xml import parse
from ..outputs.libvirt import err_text, libvirt_module
from ..types import Source
from .base import Input, InputOptions
from .libvirtxml import source_from_domain

DEFAULT_URI = "qemu:///system"
VMWARE_DRIVERS = ("esx", "vpx")
LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")
STATES = {1: "running", 2: "blocked", 3: "paused", 4: "shutting down", 6: "crashed",
          7: "suspended (pmsuspended)"}


def _remote_host(uri: str) -> str | None:
    """The host a URI's disks live on, or None when they are on this machine."""
    u = urlsplit(uri)
    transport = u.scheme.partition("+")[2]
    host = u.hostname or ""
    if transport in ("", "unix") and host in LOCAL_HOSTS:
        return None
    return host or uri


def _open(uri: str, shown: str) -> Any:
    lv = libvirt_module()
    try:
        return lv.openReadOnly(uri)
    except lv.libvirtError as e:
        raise V2VError(f"-i libvirt: cannot connect to libvirt at {shown}: {err_text(e)}"
                       ) from None


def _resolve_volumes(conn: Any, root: etree._Element, name: str) -> None:
    """Rewrite each <disk type='volume'> as the file or block device the pool says it is."""
    lv = libvirt_module()
    for i, disk in enumerate(root.findall("./devices/disk[@type='volume']")):
        src = disk.find("source")
        pool_name = src.get("pool") if src is not None else None
        vol_name = src.get("volume") if src is not None else None
        if src is None or not pool_name or not vol_name:
            raise V2VError(f"-i libvirt: domain {name}: volume disk {i} names no pool and "
                           "volume")
        try:
            vol = conn.storagePoolLookupByName(pool_name).storageVolLookupByName(vol_name)
            kind, path = vol.info()[0], vol.path()
        except lv.libvirtError as e:
            raise V2VError(f"-i libvirt: domain {name}: cannot find volume {vol_name} in pool "
                           f"{pool_name}: {err_text(e)}") from None
        if kind not in (lv.VIR_STORAGE_VOL_FILE, lv.VIR_STORAGE_VOL_BLOCK):
            raise V2VError(f"-i libvirt: domain {name}: volume {pool_name}/{vol_name} is not a "
                           f"local file or block device ({path})")
        block = kind == lv.VIR_STORAGE_VOL_BLOCK
        disk.set("type", "block" if block else "file")
        for attr in list(src.attrib):
            del src.attrib[attr]
        src.set("dev" if block else "file", path)


def domain_root(uri: str, name: str, shown: str | None = None) -> etree._Element:
    """Look the domain up read-only, refuse it unless shut off: its inactive XML with volume
    disks resolved (`shown`: the URI as errors name it, default `uri`)."""
    lv = libvirt_module()
    shown = shown or uri
    conn = _open(uri, shown)
    try:
        try:
            dom = conn.lookupByName(name)
        except lv.libvirtError:
            raise V2VError(f"-i libvirt: no domain called {name} on {shown} "
                           "(virsh list --all lists them)") from None
        try:
            state = dom.state(0)[0]
            xml = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
        except lv.libvirtError as e:
            raise V2VError(f"-i libvirt: cannot read domain {name}: {err_text(e)}") from None
        if state != lv.VIR_DOMAIN_SHUTOFF:
            raise V2VError(f"-i libvirt: domain {name} is {STATES.get(state, 'not shut off')}: "
                           "it must be shut down in order to perform the conversion "
                           f"(virsh shutdown {name})")
        root = parse(xml, what=f"the XML of domain {name}")
        _resolve_volumes(conn, root, name)
    finally:
        conn.close()
    return root


def domain_source(opts: InputOptions, uri: str) -> Source:
    root = domain_root(uri, opts.args[0])
    return source_from_domain(root, opts, f"-i libvirt: domain {opts.args[0]}", "/")


class LibvirtInput(Input):
    name = "libvirt"
    description = "a shut-off guest of a libvirt-managed hypervisor (-ic URI NAME)"
    accepts_conn = True
    accepts_password = True  # -ip FILE: esx:// and vpx:// connections (inputs/esx.py)
    io_options = {"ssh-identity": "qemu+ssh://, xen+ssh://: the private key file to log in "
                                  "with"}

    def source(self, opts: InputOptions) -> Source:
        if len(opts.args) != 1:
            raise V2VError("-i libvirt: expecting one guest name (a libvirt domain: "
                           "-i libvirt -ic URI NAME)")
        uri = opts.input_conn or DEFAULT_URI
        driver = urlsplit(uri).scheme.partition("+")[0]
        if driver in VMWARE_DRIVERS:
            try:
                from .esx import esx_source  # type: ignore[import-not-found,unused-ignore]
            except ImportError:
                raise V2VError(f"-i libvirt: {driver}:// (VMware ESXi/vCenter) URIs are not "
                               "supported by this build") from None
            result: Source = esx_source(opts)
            return result
        if opts.password_file:
            raise V2VError("-ip: only esx:// and vpx:// connections use a password file")
        if _remote_host(uri) is not None:
            from .libvirt_ssh import remote_source

            return remote_source(opts, uri)
        return domain_source(opts, uri)
