"""A fake virtio-win: the real ISO's directory and file-name layout with placeholder drivers.

    <driver dir>/<os>/<arch>/<files>     e.g. viostor/2k22/amd64/viostor.{cat,inf,sys}
    guest-agent/qemu-ga-{x86_64,i386}.msi, virtio-win-gt-x64.msi, virtio-win-guest-tools.exe,
    virtio-win_license.txt, data/info.json

`make_tree(dir, variant)` writes it; `make_iso(file, variant)` packs it with xorriso (volume id
like the real ISO's).  `ensure_virtio_win(kind, variant)` caches both under the fixture cache.
Variant "no-2k22" lacks every 2k22 directory (a virtio-win too old for Windows Server 2022).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .image import cache_dir, locked
from .layout import pe64, placeholder

VERSION = "0.1.240"
VOLUME_ID = f"virtio-win-{VERSION}"
VARIANTS = ("full", "no-2k22")
OS_DIRS = ("2k8R2", "w7", "2k12R2", "w8.1", "w10", "2k16", "2k19", "2k22", "w11")
X86_OS_DIRS = ("w7", "w8.1", "w10")  # 32-bit builds still shipped for clients
# directory: (file stem, extra files, os dirs it exists for; None = all)
DRIVERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...] | None]] = {
    "viostor": ("viostor", (), None),
    "vioscsi": ("vioscsi", (), None),
    "NetKVM": ("netkvm", ("netkvmco.exe", "netkvmp.exe"), None),
    "Balloon": ("balloon", ("blnsvr.exe",), None),
    "vioserial": ("vioser", (), None),
    "viorng": ("viorng", (), None),
    "viofs": ("viofs", ("virtiofs.exe",), ("w10", "2k16", "2k19", "2k22", "w11")),
    "pvpanic": ("pvpanic", (), None),
    "qxldod": ("qxldod", (), ("w8.1", "2k12R2", "w10", "2k16", "2k19", "2k22", "w11")),
    "vioinput": ("vioinput", ("viohidkmdf.sys",), ("w10", "2k16", "2k19", "2k22", "w11")),
}


def driver_files(variant: str = "full") -> dict[str, bytes]:
    """Relative path -> content of every file in the tree."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown virtio-win variant {variant!r} (known: {', '.join(VARIANTS)})")
    files: dict[str, bytes] = {}
    for top, (stem, extras, only) in DRIVERS.items():
        for os_dir in only or OS_DIRS:
            if variant == "no-2k22" and os_dir == "2k22":
                continue
            for arch in ("amd64", "x86") if os_dir in X86_OS_DIRS else ("amd64",):
                d = f"{top}/{os_dir}/{arch}"
                inf = (
                    f"; {stem}.inf for {os_dir} {arch} (pyv2v fake virtio-win {VERSION})\r\n"
                    f'[Version]\r\nSignature="$WINDOWS NT$"\r\nDriverVer=01/01/2024,'
                    f"100.94.104.24000\r\n"
                )
                files[f"{d}/{stem}.inf"] = inf.encode()
                files[f"{d}/{stem}.cat"] = placeholder(f"{d}/{stem}.cat")
                files[f"{d}/{stem}.sys"] = pe64("native")
                files[f"{d}/{stem}.pdb"] = placeholder(f"{d}/{stem}.pdb")
                for extra in extras:
                    files[f"{d}/{extra}"] = pe64("native" if extra.endswith(".sys") else "console")
    files["guest-agent/qemu-ga-x86_64.msi"] = placeholder("qemu-ga-x86_64.msi")
    files["guest-agent/qemu-ga-i386.msi"] = placeholder("qemu-ga-i386.msi")
    files["virtio-win-gt-x64.msi"] = placeholder("virtio-win-gt-x64.msi")
    files["virtio-win-gt-x86.msi"] = placeholder("virtio-win-gt-x86.msi")
    files["virtio-win-guest-tools.exe"] = pe64("gui")
    files["virtio-win_license.txt"] = placeholder("license")
    info = {
        "version": VERSION,
        "variant": variant,
        "drivers": sorted({p.rsplit("/", 1)[0] for p in files if p.count("/") == 3}),
    }
    files["data/info.json"] = json.dumps(info, indent=1).encode()
    return files


def make_tree(dest: Path, variant: str = "full") -> Path:
    """Write the tree into the (new or empty) directory `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")
    for rel, content in driver_files(variant).items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return dest


def make_iso(dest: Path, variant: str = "full") -> Path:
    """Pack the tree as an ISO 9660 image (Joliet + Rock Ridge) at `dest`."""
    with tempfile.TemporaryDirectory(prefix="pyv2v-virtio-win-") as tmp:
        tree = make_tree(Path(tmp) / "tree", variant)
        done = subprocess.run(
            [
                "xorriso",
                "-as",
                "mkisofs",
                "-quiet",
                "-J",
                "-R",
                "-V",
                VOLUME_ID,
                "-o",
                str(dest),
                str(tree),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"xorriso failed: {done.stderr.strip()}")
    return dest


def _key(variant: str) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(Path(__file__).with_name("layout.py").read_bytes() + variant.encode())
    return h.hexdigest()[:16]


def ensure_virtio_win(kind: str = "dir", variant: str = "full") -> Path:
    """The cached fake virtio-win: a directory (kind "dir") or an ISO file (kind "iso")."""
    if kind not in ("dir", "iso"):
        raise ValueError("kind must be 'dir' or 'iso'")
    base = cache_dir() / f"virtio-win-{variant}-{_key(variant)}"
    final = base.with_suffix(".iso") if kind == "iso" else base
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with locked(final.parent / "windows-build.lock", "the fake virtio-win"):
        if final.exists():
            return final
        tmp = final.with_name(final.name + ".tmp")
        if tmp.is_dir():
            shutil.rmtree(tmp)
        tmp.unlink(missing_ok=True)
        if kind == "iso":
            make_iso(tmp, variant)
        else:
            make_tree(tmp, variant)
        os.replace(tmp, final)
    return final
