"""Turning an image tree into a reproducible initramfs: trimming what a p2v boot never uses,
clamping mtimes to SOURCE_DATE_EPOCH, a sorted newc cpio with renumbered inodes, zstd; and
config layers (small uncompressed cpio archives the kernel unpacks over the base).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from .. import process


def trim(root: str, kver: str, paths: list[str], module_dirs: list[str]) -> None:
    for rel in paths:
        p = os.path.join(root, rel)
        if os.path.isdir(p) and not os.path.islink(p):
            for child in os.listdir(p):
                c = os.path.join(p, child)
                if os.path.isdir(c) and not os.path.islink(c):
                    shutil.rmtree(c)
                else:
                    os.unlink(c)
    for rel in module_dirs:
        shutil.rmtree(os.path.join(root, "lib/modules", kver, "kernel", rel), ignore_errors=True)


def _walk_sorted(root: str) -> list[str]:
    """Every path under root (relative, "." first), parents before children, sorted."""
    out = ["."]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in sorted(
            filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        ):
            out.append(os.path.normpath(os.path.join(rel, name)))
        for d in dirnames:
            if not os.path.islink(os.path.join(dirpath, d)):
                out.append(os.path.normpath(os.path.join(rel, d)))
    return sorted(out, key=lambda p: (p != ".", p))


def pack(root: str, initrd: Path, listing: Path, epoch: int) -> int:
    """Pack `root` into the zstd newc archive `initrd`; write a sha256 line per regular file
    to `listing` (compare two builds with diff); returns the number of entries."""
    os.chmod(root, 0o755)  # the archive's "." becomes / (mkdtemp made it 0700)
    names = _walk_sorted(root)
    lines = []
    for rel in names:
        path = os.path.join(root, rel)
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            lines.append(f"{h.hexdigest()}  {oct(st.st_mode & 0o7777)}  {rel}")
        elif stat.S_ISLNK(st.st_mode):
            lines.append(f"{'-' * 64}  link  {rel} -> {os.readlink(path)}")
        if st.st_mtime > epoch:
            os.utime(path, (epoch, epoch), follow_symlinks=False)
    listing.write_text("\n".join(lines) + "\n")
    cpio = initrd.with_suffix(".cpio")
    process.run(
        ["cpio", "-o", "-H", "newc", "--reproducible", "--quiet", "-O", str(cpio)],
        input="\n".join(names) + "\n",
        cwd=root,
        timeout=1800,
    )
    process.run(
        ["zstd", "-q", "-f", "-T0", "-12", "--rm", str(cpio), "-o", str(initrd)], timeout=1800
    )
    return len(names)


def installed(root: str) -> list[str]:
    """name=version of every Debian package in the tree (from dpkg's status file)."""
    out, name = [], ""
    with open(os.path.join(root, "var/lib/dpkg/status"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("Package: "):
                name = line.split()[1]
            elif line.startswith("Version: ") and name:
                out.append(f"{name}={line.split()[1]}")
    return sorted(out)


def layer(tree: Path, out: Path, epoch: int) -> None:
    """The uncompressed newc archive of `tree`, appended after the base initramfs: the kernel
    unpacks it last, so its files replace the base's."""
    os.chmod(tree, 0o755)
    names = _walk_sorted(str(tree))
    for rel in names:
        os.utime(tree / rel, (epoch, epoch), follow_symlinks=False)
    process.run(
        ["cpio", "-o", "-H", "newc", "--reproducible", "--quiet", "-O", str(out)],
        input="\n".join(names) + "\n",
        cwd=str(tree),
        timeout=300,
    )
