"""`-i libvirt -ic qemu+ssh://[user@]host[:port]/system NAME` (also ``xen+ssh://`` and the
``+libssh`` forms): a shut-off guest of a libvirt host reached over ssh, its disks read there.

Metadata: libvirt's own ``ssh`` transport runs the ssh binary with the user's configuration and
known_hosts, outside pyv2v's host-key policy, so the URI is rewritten to libvirt's ``libssh``
transport (built into libvirt 9.0's client library) with ``known_hosts=`` pyv2v's known_hosts,
``known_hosts_verify=normal`` (a key that is not recorded, or differs, fails the connection:
libvirt can ask nobody, the connection is opened with no auth callback), ``keyfile=`` the
identity and ``sshauth=privkey``.  Before that the host key is settled as for every pyv2v ssh
client (ssh_disks.settle_host_key: recorded on first use with its fingerprint shown).  The
user's other URI parameters (``socket=``, ``proxy=``, ``netcat=``…) pass through; the ones that
would change the host-key check or authentication are refused.  The domain is then read as for a
local URI (libvirt.domain_root: refused unless shut off, volumes resolved to paths).

Disks: each file disk (``<disk type='file'>``, or a volume that resolves to a file) is a path on
the remote host, served read-only by nbdkit's ssh plugin (ssh_disks.serve: same host, port,
user, identity and known_hosts) on a private unix socket and probed there with
``qemu-img info`` for its format and size; an image that names another file (a backing file, an
external data file) is refused, since that file would be looked up on this host.  Block devices
and network disks on the remote host are refused.
"""

from __future__ import annotations

import json
import posixpath
import urllib.parse
from typing import Any

from lxml import etree

from ... import process, ssh
from ...errors import V2VError
from ..types import Source
from . import ssh_disks
from .base import InputOptions
from .libvirt import domain_root
from .libvirtxml import source_from_domain
from .ova_archive import private_sockdir

WHAT = "-i libvirt"
DRIVERS = ("qemu", "xen")
TRANSPORTS = ("ssh", "libssh")
# set by us; a user's value would weaken the host-key check or the authentication
OURS = ("keyfile", "known_hosts", "known_hosts_verify", "sshauth", "no_verify", "command")


def libssh_uri(uri: str, identity: str | None) -> tuple[str, ssh.Target]:
    """The libssh URI libvirt is opened with, and the ssh target the disks are read from."""
    u = urllib.parse.urlsplit(uri)
    driver, _, transport = u.scheme.partition("+")
    if driver not in DRIVERS or transport not in TRANSPORTS:
        raise V2VError(f"{WHAT}: {uri[:100]} is a remote connection this input cannot read "
                       "disks through (use qemu+ssh://, xen+ssh:// or their +libssh forms; or "
                       "copy the disks here and use -i libvirtxml)")
    if not u.hostname:
        raise V2VError(f"{WHAT}: no host name in {uri[:100]}")
    if u.password:
        raise V2VError(f"{WHAT}: passwords in the URI are not accepted (use a key: "
                       "-io ssh-identity=FILE)")
    try:
        port = u.port or 22
    except ValueError:
        raise V2VError(f"{WHAT}: bad port in {uri[:100]}") from None
    params = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    for k, _ in params:
        if k in OURS:
            raise V2VError(f"{WHAT}: the URI parameter {k}= is set by v2v (host keys are "
                           "checked against pyv2v's known_hosts, login is by key: "
                           "-io ssh-identity=FILE)")
    user = urllib.parse.unquote(u.username or "root")
    t = ssh.Target(host=u.hostname, port=port, user=user,
                   identity=ssh_disks.identity(identity, WHAT), role="libvirt host")
    params += [("keyfile", str(t.identity)), ("known_hosts", t.known_hosts_file),
               ("known_hosts_verify", "normal"), ("sshauth", "privkey")]
    host = f"[{t.host}]" if ":" in t.host else t.host
    netloc = f"{urllib.parse.quote(user, safe='')}@{host}:{port}"
    query = urllib.parse.urlencode(params, safe="/:", quote_via=urllib.parse.quote)
    return urllib.parse.urlunsplit((f"{driver}+libssh", netloc, u.path, query, "")), t


def _probe(loc: str, fmt: str | None, shown: str) -> tuple[str, int]:
    """Format and virtual size of a served disk; refuse images that name other files."""
    argv = ["qemu-img", "info", "--output=json", "-U"] + (["-f", fmt] if fmt else []) + [loc]
    res = process.run(argv, check=False, timeout=120)
    if res.rc != 0:
        last = (res.err.strip().splitlines() or ["unknown error"])[-1]
        raise V2VError(f"{WHAT}: cannot read disk image {shown}: {last}")
    info: dict[str, Any] = json.loads(res.out)
    data = (info.get("format-specific") or {}).get("data") or {}
    other = info.get("backing-filename") or data.get("data-file")
    if other:
        raise V2VError(f"{WHAT}: disk image {shown} refers to {str(other)[:100]!r} (a backing "
                       "or data file), which is not read over ssh: flatten the image first "
                       "(qemu-img convert)")
    size = int(info.get("virtual-size") or 0)
    if size <= 0:
        raise V2VError(f"{WHAT}: disk image {shown} has a virtual size of 0 bytes")
    return str(info["format"]), size


def _serve_disks(root: etree._Element, t: ssh.Target, name: str) -> None:
    """Rewrite each remote file disk as an NBD disk on a private socket served over ssh."""
    sockdir = private_sockdir("pyv2v-libvirt-ssh-")
    disks = [d for d in root.findall("./devices/disk")
             if d.get("device", "disk") in ("disk", "lun")]
    for i, disk in enumerate(disks):
        src = disk.find("source")
        path = src.get("file") if src is not None else None
        if disk.get("type", "file") != "file" or src is None or not path:
            raise V2VError(f"{WHAT}: domain {name}: disk {i} (<disk type="
                           f"'{disk.get('type')}'>) is not a file on {t.host}: only file disks "
                           "are read over ssh")
        if not posixpath.isabs(path):
            raise V2VError(f"{WHAT}: domain {name}: disk {i} path {path!r} is not absolute")
        drv = disk.find("driver")
        fmt = drv.get("type") if drv is not None else None
        loc = ssh_disks.serve(t, path, sockdir, i, WHAT)
        probed, _ = _probe(loc, fmt if fmt and fmt != "aio" else None, f"{t.host}:{path}")
        if drv is None:
            drv = etree.SubElement(disk, "driver", name="qemu")
        drv.set("type", probed)
        disk.set("type", "network")
        disk.remove(src)
        new = etree.SubElement(disk, "source", protocol="nbd")
        etree.SubElement(new, "host", transport="unix", socket=loc.partition("socket=")[2])


def remote_source(opts: InputOptions, uri: str) -> Source:
    name = opts.args[0]
    lib_uri, t = libssh_uri(uri, opts.extra.get("ssh-identity") or None)
    ssh_disks.settle_host_key(t)
    root = domain_root(lib_uri, name, shown=uri)
    _serve_disks(root, t, name)
    return source_from_domain(root, opts, f"{WHAT}: domain {name}", "/")
