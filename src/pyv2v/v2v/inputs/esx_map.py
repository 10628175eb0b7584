"""Pure facts of `-i libvirt -ic esx://… / vpx://…` (no I/O): the -ic URI, the datacenter path,
each disk's `[datastore] folder/guest.vmdk` as a datastore HTTPS URL, the VMDK descriptor
checks, and the curl config and cookie script nbdkit authenticates with.  inputs/esx.py does the
talking (libvirt's ESX driver, HTTPS, nbdkit).

A datastore file is reached as VMware's file browser serves it, the reference's (virt-v2v
vCenter.ml) URL layout: ``https://SERVER[:PORT]/folder/PATH?dcPath=DC&dsName=DATASTORE``.  The
datacenter path comes from the domain XML's ``<vmware:datacenterpath>`` (libvirt ≥ 1.2.20 emits
it); without it: ``ha-datacenter`` for esx:// (an ESXi host's only datacenter) and, for
vpx://, the URI path without its last component (the host), as older virt-v2v did.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import urllib.parse
from dataclasses import dataclass

from lxml import etree

from ...errors import V2VError

SCHEMES = ("esx", "vpx")
VMWARE_NS = "http://libvirt.org/schemas/domain/vmware/1.0"
ESX_DATACENTER = "ha-datacenter"
SOURCE_RE = re.compile(r"^\[(.+?)\] (.+\.vmdk)$")
# A VMDK whose data is one raw extent: ESXi writes createType "vmfs" (thick or thin).
FLAT_TYPES = ("vmfs", "vmfsThin", "vmfsEagerZeroedThick", "monolithicFlat")
CREATE_TYPE_RE = re.compile(r'^\s*createType\s*=\s*"?([A-Za-z0-9_]+)"?', re.M)
EXTENT_RE = re.compile(r'^\s*(RW|RDONLY)\s+(\d+)\s+(\w+)\s+"([^"]*)"', re.M)


@dataclass(frozen=True)
class EsxUri:
    scheme: str  # "esx" | "vpx"
    server: str
    port: int | None  # None: 443
    user: str
    path: str  # vpx: /Datacenter[/cluster]/host
    no_verify: bool

    @property
    def https_base(self) -> str:
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"https://{host}" + (f":{self.port}" if self.port and self.port != 443 else "")


def parse_uri(ic: str) -> EsxUri:
    """-ic esx://USER@SERVER[:PORT]/?no_verify=1, vpx://USER@VCENTER/DC/[CLUSTER/]HOST?…"""
    u = urllib.parse.urlsplit(ic)
    if u.scheme not in SCHEMES:
        raise V2VError(f"-ic {ic}: not an esx:// or vpx:// URI")
    try:
        port = u.port
    except ValueError:
        raise V2VError(f"-ic {ic}: bad port number") from None
    if not u.hostname:
        raise V2VError(f"-ic {ic}: no server name (expecting {u.scheme}://USER@SERVER/…)")
    if u.password is not None:
        raise V2VError("-ic: passwords in the URI are not accepted (use -ip FILE)")
    if not u.username:
        raise V2VError(
            f"-ic {ic}: give the user name in the URI ({u.scheme}://USER@{u.hostname}/…)"
        )
    query = urllib.parse.parse_qs(u.query)
    no_verify = query.get("no_verify", ["0"])[-1] == "1"
    path = urllib.parse.unquote(u.path)
    if u.scheme == "vpx" and len([p for p in path.split("/") if p]) < 2:
        raise V2VError(
            f"-ic {ic}: a vpx:// URI names the datacenter and the ESXi host "
            "(vpx://USER@VCENTER/DATACENTER/HOST)"
        )
    return EsxUri(u.scheme, u.hostname, port, urllib.parse.unquote(u.username), path, no_verify)


def datacenter_path(uri: EsxUri, root: etree._Element) -> str:
    text = root.findtext(f"{{{VMWARE_NS}}}datacenterpath")
    if text and text.strip():
        return text.strip()
    if uri.scheme == "esx":
        return ESX_DATACENTER
    return "/".join([p for p in uri.path.split("/") if p][:-1])


def datastore_file(source: str, what: str) -> tuple[str, str]:
    """`[datastore1] guest/guest.vmdk` → ("datastore1", "guest/guest.vmdk"), confined."""
    m = SOURCE_RE.match(source)
    if not m:
        raise V2VError(
            f"{what}: disk {source!r} is not a datastore path ('[datastore] folder/file.vmdk')"
        )
    ds, path = m.group(1), m.group(2)
    norm = posixpath.normpath(path)
    if path.startswith("/") or norm != path or norm.startswith("../") or "\0" in path:
        raise V2VError(f"{what}: disk path {source!r} is not a plain path in its datastore")
    return ds, path


def file_url(uri: EsxUri, dc_path: str, datastore: str, path: str) -> str:
    q = urllib.parse.urlencode(
        {"dcPath": dc_path, "dsName": datastore}, quote_via=urllib.parse.quote
    )
    return f"{uri.https_base}/folder/{urllib.parse.quote(path)}?{q}"


def flat_extent(descriptor: bytes, path: str, vmdk_path: str) -> str:
    """The datastore path of the one flat extent the descriptor of `path` names (same folder);
    `vmdk_path` names the disk in errors."""
    text = descriptor.split(b"\0", 1)[0].decode("utf-8", "replace")
    if not text.startswith("# Disk DescriptorFile"):
        raise V2VError(
            f"{vmdk_path} is not a VMDK descriptor (a hosted sparse disk cannot be "
            "read over HTTPS: export it as an OVA)"
        )
    m = CREATE_TYPE_RE.search(text)
    kind = m.group(1) if m else "unknown"
    if kind not in FLAT_TYPES:
        hint = (
            " (a snapshot: delete or consolidate the VM's snapshots first)"
            if kind in ("vmfsSparse", "seSparse")
            else ""
        )
        raise V2VError(
            f"{vmdk_path}: VMDK type {kind!r} cannot be read over HTTPS{hint} "
            f"(supported: {', '.join(FLAT_TYPES)})"
        )
    extents = EXTENT_RE.findall(text)
    if len(extents) != 1:
        raise V2VError(f"{vmdk_path}: expecting one flat extent, found {len(extents)}")
    name = extents[0][3]
    if not name or "/" in name or name in (".", ".."):
        raise V2VError(f"{vmdk_path}: extent {name!r} is not a file in the same folder")
    return posixpath.join(posixpath.dirname(path), name)


def set_nbd_socket(disk: etree._Element, socket: str) -> None:
    """Rewrite a <disk type='file'> as the read-only raw NBD export on `socket`."""
    for child in list(disk):
        if child.tag in ("source", "driver"):
            disk.remove(child)
    disk.set("type", "network")
    driver = etree.SubElement(disk, "driver", name="qemu", type="raw")
    src = etree.SubElement(disk, "source", protocol="nbd")
    etree.SubElement(src, "host", transport="unix", socket=socket)
    disk.insert(0, driver)
    disk.insert(1, src)


def _curl_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def curl_config(uri: EsxUri, password: str, url: str) -> str:
    """A curl config (`curl -K`: the password never on a command line) for a HEAD of `url`."""
    lines = [
        f"user = {_curl_quote(f'{uri.user}:{password}')}",
        f"url = {_curl_quote(url)}",
        "head",
        "silent",
        'proto = "=https"',
        "max-time = 120",
    ]
    return "\n".join(lines + (["insecure"] if uri.no_verify else [])) + "\n"


def cookie_script(config: str) -> str:
    """nbdkit's cookie-script: print the session cookie (`NAME=VALUE`) a HEAD sets."""
    return (
        f"#!/bin/sh -\ncurl -K {shlex.quote(config)} | "
        "sed -ne 's/^Set-Cookie: \\([^;]*\\);.*/\\1/ip'\n"
    )
