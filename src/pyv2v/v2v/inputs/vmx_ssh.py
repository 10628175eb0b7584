"""`-i vmx -it ssh vmx+ssh://[user@]host[:port]/path/guest.vmx`: a VMX on a remote host (an
ESXi datastore, a VMware Workstation machine) read over ssh, as the reference's -it ssh.

The VMX and each VMDK's first 64 KiB (its descriptor) are read with `ssh … cat`/`od` (hex:
binary-safe with only POSIX tools, as on ESXi's busybox); the
disks themselves are served by nbdkit's ssh plugin (sftp, read-only) on a private unix socket,
never copied by us first: the pipeline's overlay then pulls each one in a single sequential
pass (DESIGN: local storage for the appliance).  A sparse VMDK (monolithicSparse,
streamOptimized) is served whole and read by qemu as vmdk; a flat one (monolithicFlat, vmfs,
vmfsThin: one FLAT/VMFS extent) has its extent served as raw.  Split extents
(twoGbMaxExtent*) are refused.  Authentication is by key (`-io ssh-identity=KEY`, default
~/.ssh/id_ed25519, id_ecdsa or id_rsa); the host key is checked against pyv2v's known_hosts
(recorded on first use with its fingerprint shown), by ssh and by nbdkit alike.  Disk paths
must stay inside the VMX's directory unless --allow-external-files.
"""

from __future__ import annotations

import os
import posixpath
import urllib.parse

from ... import process, ssh
from ...errors import V2VError
from ..types import Source, SourceDisk
from . import ssh_disks, vmdk
from .base import InputOptions
from .disk import ALLOW_HINT, EXTENT_RE
from .ova_archive import private_sockdir
from .vmx import source_from_machine
from .vmxfile import machine_from_vmx, parse_vmx_text

FLAT_TYPES = ("monolithicFlat", "vmfs", "vmfsThin")
SPARSE_TYPES = ("monolithicSparse", "streamOptimized")
WHAT = "-i vmx -it ssh"


def parse_uri(arg: str, identity: str | None) -> tuple[ssh.Target, str]:
    u = urllib.parse.urlsplit(arg)
    if u.scheme not in ("vmx+ssh", "ssh"):
        raise V2VError(f"-i vmx -it ssh: {arg[:80]!r} is not a vmx+ssh://[user@]host/path.vmx "
                       "URI")
    try:
        port = u.port or 22
    except ValueError:
        raise V2VError(f"-i vmx -it ssh: bad port in {arg[:80]!r}") from None
    if not u.hostname:
        raise V2VError(f"-i vmx -it ssh: no host name in {arg[:80]!r}")
    path = urllib.parse.unquote(u.path)
    if not path or path == "/" or not path.startswith("/"):
        raise V2VError(f"-i vmx -it ssh: no VMX path in {arg[:80]!r}")
    if u.password:
        raise V2VError("-i vmx -it ssh: passwords in the URI are not accepted (use a key: "
                       "-io ssh-identity=FILE)")
    key = ssh_disks.identity(identity, WHAT)
    return ssh.Target(host=u.hostname, port=port, user=urllib.parse.unquote(u.username or "root"),
                      identity=key, role="VMX host"), path


def _remote(t: ssh.Target, argv: list[str], what: str, limit: int = 4 << 20) -> bytes:
    res = process.run(ssh.ssh_argv(t, ssh.quote(argv)), check=False, timeout=120)
    if res.rc != 0:
        raise V2VError(f"-i vmx -it ssh: cannot read {what} on {t.display}: "
                       f"{ssh.explain(res.err, t)}")
    data = res.out.encode("utf-8", "surrogateescape")
    if len(data) > limit:
        raise V2VError(f"-i vmx -it ssh: {what} is too large")
    return data


def _confined(vmx_dir: str, name: str, allow: bool, what: str) -> str:
    path = posixpath.normpath(posixpath.join(vmx_dir, name))
    if not allow and not path.startswith(vmx_dir.rstrip("/") + "/"):
        raise V2VError(f"-i vmx -it ssh: {what} {name} is outside {vmx_dir}" + ALLOW_HINT)
    return path


def remote_source(opts: InputOptions) -> Source:
    t, vmx_path = parse_uri(opts.args[0], opts.extra.get("ssh-identity") or None)
    ssh_disks.settle_host_key(t)
    text = _remote(t, ["cat", "--", vmx_path], f"VMX file {vmx_path}").decode("utf-8", "replace")
    m = machine_from_vmx(parse_vmx_text(text, what=vmx_path), what=vmx_path)
    if not m.disks:
        raise V2VError(f"-i vmx: {vmx_path} names no hard disks")
    vmx_dir = posixpath.dirname(vmx_path)
    sockdir = private_sockdir("pyv2v-vmx-ssh-")
    disks = []
    for i, d in enumerate(m.disks):
        path = _confined(vmx_dir, d.filename, opts.allow_external_files, "disk")
        hexdump = _remote(t, ["od", "-An", "-v", "-tx1", "-N", "65536", "--", path],
                          f"disk {path}")
        try:
            head = bytes.fromhex(hexdump.decode("ascii", "replace").replace("\n", " "))
        except ValueError:
            raise V2VError(f"-i vmx -it ssh: unexpected od output reading {path}") from None
        if not head:
            raise V2VError(f"-i vmx -it ssh: {vmx_path} names disk {d.filename}, which is "
                           "missing or empty")
        local = os.path.join(sockdir, f"head{i}")
        with open(local, "xb") as f:
            f.write(head)
        kind = vmdk.check_subformat(local, what=f"{t.host}:{path}")
        if kind in SPARSE_TYPES:
            loc, fmt = ssh_disks.serve(t, path, sockdir, i, WHAT), "vmdk"
        elif kind in FLAT_TYPES or vmdk.is_text_descriptor(local):
            extents = EXTENT_RE.findall(head.decode("utf-8", "replace"))
            if kind not in FLAT_TYPES or len(extents) != 1:
                raise V2VError(f"-i vmx -it ssh: disk {path} ({kind}, {len(extents)} extents) "
                               "is not supported over ssh (one flat extent only)")
            ext = _confined(posixpath.dirname(path), extents[0], opts.allow_external_files,
                            "VMDK extent")
            loc, fmt = ssh_disks.serve(t, ext, sockdir, i, WHAT), "raw"
        else:
            loc, fmt = ssh_disks.serve(t, path, sockdir, i, WHAT), "raw"
        disks.append(SourceDisk(index=i, location=loc, format=fmt,
                                target_dev=f"{d.bus}{d.controller}:{d.target}"))
    name = opts.name or m.name or posixpath.basename(vmx_path).rsplit(".", 1)[0]
    return source_from_machine(m, tuple(disks), name)
