"""`-i vmx`: a VMware .vmx file and its VMDKs as the source (local; `-it ssh` for a remote one).

The VMX is parsed by vmxfile.py.  Each disk's fileName is resolved against the VMX's directory
and must stay inside it (symlinks resolved) unless --allow-external-files: a VMX is untrusted
and must not make us read /etc/shadow.  Each VMDK's subformat is checked (vmdk.py) and the
image is probed by `probe_image`, which follows descriptors to their extents and refuses
extents and parents outside the directory.  monolithicSparse, streamOptimized and
monolithicFlat/twoGbMaxExtent* (descriptor + extents) read the same way: qemu opens the
descriptor.  Remote VMX (`-it ssh`): see vmx_ssh.py.
"""

from __future__ import annotations

import os

from ...errors import V2VError
from ..types import Source, SourceCpu, SourceDisk, SourceNic, SourceRemovable
from . import vmdk
from .base import Input, InputOptions
from .disk import ALLOW_HINT, check_file, probe_image
from .vmxfile import VmxMachine, machine_from_vmx, parse_vmx_text

MAX_READ = 4 << 20


def read_vmx(path: str) -> VmxMachine:
    check_file(path, "VMX file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_READ + 1)
    except OSError as e:
        raise V2VError(f"cannot read VMX file {path}: {e.strerror}") from e
    return machine_from_vmx(parse_vmx_text(data.decode("utf-8", "replace"), what=path),
                            what=path)


def local_disk_path(vmx_path: str, filename: str, allow_external: bool) -> str:
    """The VMDK a VMX names, confined to the VMX's directory."""
    vmx_dir = os.path.dirname(os.path.abspath(vmx_path))
    path = os.path.normpath(os.path.join(vmx_dir, filename))
    if not allow_external:
        roots = {os.path.realpath(vmx_dir)}
        real = os.path.realpath(path)
        if not any(real.startswith(r.rstrip("/") + "/") for r in roots):
            raise V2VError(f"-i vmx: {vmx_path} names disk {filename}, which resolves to {real} "
                           f"outside {vmx_dir}" + ALLOW_HINT)
    if not os.path.lexists(path):
        raise V2VError(f"-i vmx: {vmx_path} names disk {filename}, which does not exist "
                       f"({path})")
    return path


def source_from_machine(m: VmxMachine, disks: tuple[SourceDisk, ...], name: str) -> Source:
    cpu = SourceCpu(sockets=m.vcpus // m.cores_per_socket, cores=m.cores_per_socket,
                    threads=1) if m.cores_per_socket else SourceCpu()
    return Source(
        name=name, hypervisor="vmware", memory=m.memory, vcpus=m.vcpus, disks=disks,
        nics=tuple(SourceNic(mac=n.mac, vnet=n.network, vnet_type=n.vnet_type, model=n.model)
                   for n in m.nics),
        removables=tuple(SourceRemovable(kind=r) for r in m.removables),
        cpu=cpu, firmware=m.firmware, secure_boot=m.secure_boot, tpm=m.tpm,
        features=("acpi", "apic", "pae"))


def _name(m: VmxMachine, path: str) -> str:
    base = os.path.basename(path)
    return m.name or (base.rsplit(".", 1)[0] if "." in base else base)


class VmxInput(Input):
    name = "vmx"
    description = "a VMware .vmx file and its disks (local, or -it ssh vmx+ssh://…)"
    transports = ("ssh",)
    io_options = {"ssh-identity": "-it ssh: the private key file to log in with"}

    def source(self, opts: InputOptions) -> Source:
        if len(opts.args) != 1:
            raise V2VError("-i vmx: expecting one .vmx file name (or -it ssh and a "
                           "vmx+ssh://user@host/path.vmx URI)")
        if opts.transport == "ssh":
            from .vmx_ssh import remote_source

            return remote_source(opts)
        path = opts.args[0]
        if "://" in path:
            raise V2VError(f"-i vmx: {path} is a URI: use -it ssh for a remote VMX")
        m = read_vmx(path)
        if not m.disks:
            raise V2VError(f"-i vmx: {path} names no hard disks")
        disks = []
        for i, d in enumerate(m.disks):
            disk = local_disk_path(path, d.filename, opts.allow_external_files)
            check_file(disk, "VMDK")
            vmdk.check_subformat(disk)
            fmt, size = probe_image(disk, None, opts.allow_external_files)
            disks.append(SourceDisk(index=i, location=disk, format=fmt, size=size,
                                    target_dev=f"{d.bus}{d.controller}:{d.target}"))
        return source_from_machine(m, tuple(disks), opts.name or _name(m, path))
