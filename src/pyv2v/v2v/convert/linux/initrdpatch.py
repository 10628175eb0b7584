"""Add the virtio drivers to a guest's existing initramfs-tools image, on the host, in seconds.

Rebuilding the image in the emulated appliance costs 75-140 s (mkinitramfs runs thousands of
processes).  The guest's image already holds everything its own hooks put there (LVM, LUKS,
btrfs, RAID tools); it only lacks the virtio drivers.  So: read the image's main archive on the
host, take the drivers and their dependencies (the guest's ``modules.dep``) from the guest's
module tree, regenerate the image's module indexes with the host's ``depmod`` over the image's
modules plus these, and append one uncompressed cpio archive with the new modules, the new
indexes and ``conf/modules`` (the force-load list) extended.  The kernel unpacks it over the main
archive.  Anything unexpected raises `NotPatchable` and the caller rebuilds the usual way.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

from .... import log, process
from ....errors import V2VError
from ..guest import Guest
from .cpio import (
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    CpioError,
    Entry,
    decompress,
    split_image,
)
from .kernels import Kernel, module_name

# Files of the image that can name the boot disk; a source-only device name there (which the
# conversion rewrote in the guest's own copy) would be stale, so such an image is rebuilt.
DEVICE_NAMING = re.compile(r"^(conf/conf\.d/|conf/param\.conf$|cryptroot/crypttab$|"
                           r"etc/mdadm/mdadm\.conf$|etc/lvm/lvm\.conf$)")
SOURCE_DEVICE = re.compile(r"/dev/(?:[shv]d[a-z]|xvd[a-z]|nvme\d|mmcblk\d|disk/by-(?:id|path)/)")
DEPMOD_INPUTS = ("modules.order", "modules.builtin", "modules.builtin.modinfo")
_COMPRESSED_KO = re.compile(r"\.ko\.(?:xz|gz|zst)$")


class NotPatchable(Exception):
    """This image cannot be patched safely (the message says why)."""


def resolve(entries: dict[str, Entry], path: str) -> str:
    """`path` with the image's symlinks followed (``lib/modules`` → ``usr/lib/modules``)."""
    queue, hops = path.split("/"), 0
    out: list[str] = []
    while queue:
        comp = queue.pop(0)
        if comp in ("", "."):
            continue
        if comp == "..":
            out = out[:-1]
            continue
        e = entries.get("/".join([*out, comp]))
        if e is not None and e.mode & S_IFMT == S_IFLNK:
            hops += 1
            if hops > 40:
                raise NotPatchable(f"symlink loop at {path} in the image")
            target = e.data.decode("utf-8", "surrogateescape")
            if target.startswith("/"):
                out = []
            queue = target.split("/") + queue
        else:
            out.append(comp)
    return "/".join(out)


def module_closure(modules_dep: str, drivers: list[str]) -> list[str]:
    """The modules.dep paths of `drivers` and everything they depend on."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        path, sep, rest = line.partition(":")
        if sep:
            deps[path.strip()] = rest.split()
            by_name[module_name(path)] = path.strip()
    todo = []
    for d in drivers:
        if d not in by_name:
            raise NotPatchable(f"{d} is not in the guest's modules.dep")
        todo.append(by_name[d])
    seen: list[str] = []
    while todo:
        p = todo.pop(0)
        if p not in seen:
            seen.append(p)
            todo.extend(deps.get(p, []))
    return seen


def check_device_names(entries: dict[str, Entry]) -> None:
    for name, e in entries.items():
        if e.mode & S_IFMT == S_IFREG and DEVICE_NAMING.match(name):
            for line in e.data.decode("utf-8", "replace").splitlines():
                if not line.lstrip().startswith("#") and SOURCE_DEVICE.search(line):
                    raise NotPatchable(f"{name} in the image names a source device: "
                                       f"{line.strip()!r}")


def _check_safe(rel: str) -> None:
    """Names from the guest stay inside the directory they are laid out in."""
    if rel.startswith("/") or ".." in rel.split("/") or not rel.strip("/."):
        raise NotPatchable(f"unsafe module path {rel!r}")


def depmod(version: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """Run the host's depmod over `files` (names relative to the module directory); return
    the index files (modules.*) it wrote."""
    if shutil.which("depmod") is None:
        raise NotPatchable("depmod (kmod) is not installed on the conversion host")
    for rel in [version, *files]:
        _check_safe(rel)
    tmp = tempfile.mkdtemp(prefix="pyv2v-depmod-")
    try:
        root = os.path.join(tmp, "lib", "modules", version)
        try:
            for rel, data in files.items():
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                with open(os.path.join(root, rel), "wb") as f:
                    f.write(data)
        except OSError as e:
            raise NotPatchable(f"cannot lay out the image's modules: {e}") from e
        os.mkdir(os.path.join(tmp, "depmod.d"))
        res = process.run(["depmod", "-b", tmp, "-C", os.path.join(tmp, "depmod.d"), version],
                          check=False, timeout=300)
        if res.rc != 0 or "ERROR" in res.err:
            raise NotPatchable(f"depmod failed: {res.err.strip()}")
        out = {}
        for name in os.listdir(root):
            if name.startswith("modules.") and name not in files:
                with open(os.path.join(root, name), "rb") as f:
                    out[name] = f.read()
        if "modules.dep" not in out:
            raise NotPatchable("depmod wrote no modules.dep")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def new_archive(guest: Guest, kernel: Kernel, entries: dict[str, Entry],
                drivers: list[str]) -> tuple[list[tuple[str, Entry]], list[str]]:
    """The entries to append and the names of the modules added."""
    if "conf/initramfs.conf" not in entries or "conf/modules" not in entries:
        raise NotPatchable("not an initramfs-tools image")
    check_device_names(entries)
    moddir = resolve(entries, f"lib/modules/{kernel.version}")
    if entries.get(moddir, Entry(0, b"")).mode & S_IFMT != S_IFDIR:
        raise NotPatchable(f"the image has no lib/modules/{kernel.version}")
    present = {n[len(moddir) + 1:]: e.data for n, e in entries.items()
               if n.startswith(moddir + "/") and e.mode & S_IFMT == S_IFREG}
    have = {module_name(n) for n in present if ".ko" in n}
    keep_compressed = any(_COMPRESSED_KO.search(n) for n in present)
    guest_dir = kernel.modules_dir
    added: dict[str, bytes] = {}
    for rel in module_closure(guest.read_text(f"{guest_dir}/modules.dep"), drivers):
        if module_name(rel) in have:
            continue
        _check_safe(rel)
        try:
            data = guest.read(f"{guest_dir}/{rel}")
        except V2VError as e:
            raise NotPatchable(str(e)) from e
        if _COMPRESSED_KO.search(rel) and not keep_compressed:
            try:
                data = decompress(data)
            except CpioError as e:
                raise NotPatchable(f"{rel}: {e}") from e
            rel = rel[:rel.rindex(".ko") + 3]
        added[rel] = data
    inputs = {n: d for n, d in present.items() if ".ko" in n or n in DEPMOD_INPUTS}
    indexes = depmod(kernel.version, {**inputs, **added})
    out: list[tuple[str, Entry]] = []
    for rel in sorted(added):
        parts = f"{moddir}/{rel}".split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in entries and all(d != n for n, _ in out):
                out.append((d, Entry(S_IFDIR | 0o755, b"")))
        out.append((f"{moddir}/{rel}", Entry(S_IFREG | 0o644, added[rel])))
    for name, data in sorted(indexes.items()):
        if present.get(name) != data:
            out.append((f"{moddir}/{name}", Entry(S_IFREG | 0o644, data)))
    listed = entries["conf/modules"].data.decode("utf-8", "replace")
    names = {ln.split()[0].replace("-", "_") for ln in listed.splitlines() if ln.split()}
    force = [d for d in drivers if d not in names]
    if force:
        listed += ("" if not listed or listed.endswith("\n") else "\n") + "\n".join(force) + "\n"
        out.append(("conf/modules", Entry(S_IFREG | 0o644, listed.encode())))
    return out, [module_name(r) for r in sorted(added)]


def append_drivers(guest: Guest, kernel: Kernel, initrd: str, drivers: list[str]) -> None:
    """Patch `initrd` in place so that it loads `drivers`; NotPatchable if it cannot."""
    if not guest.is_file(initrd):
        raise NotPatchable(f"{initrd} does not exist")
    tmp = tempfile.mkdtemp(prefix="pyv2v-initrd-")
    try:
        local = os.path.join(tmp, "initrd")
        guest.download(initrd, local)
        with open(local, "rb") as f:
            image = f.read()
        try:
            parts = split_image(image)
            extra, added = new_archive(guest, kernel, parts.entries, drivers)
            if not extra:
                raise NotPatchable("the image already has the drivers")
            # Newer than the entries they replace, so that cpio -i (unmkinitramfs) takes them.
            newest = max((e.mtime for e in parts.entries.values()), default=0)
            data = parts.with_entries(extra, max(newest + 1, int(time.time())))
        except CpioError as e:
            raise NotPatchable(f"{initrd}: {e}") from e
        with open(local, "wb") as f:
            f.write(data)
        guest.upload(local, initrd)
        log.debug(f"{initrd}: added {', '.join(added) or 'no new module'} to the main archive "
                  f"({len(extra)} entries, {parts.method}), {len(image)} → {len(data)} bytes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
