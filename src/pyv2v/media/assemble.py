"""From the cached base to the media a user boots: one small uncompressed initramfs layer
appended to the base (the systemd units and scripts, the current p2v code, the baked
configuration p2v.conf and the identity key 0600), then the hybrid BIOS+UEFI ISO
(grub-mkrescue: i386-pc El Torito + isohybrid MBR, x86_64-efi ESP) and the PXE set (kernel,
initrd, the kernel command line in cmdline.txt and a pxelinux example).  Cheap: seconds.
"""

from __future__ import annotations

import compileall
import os
import py_compile
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import process
from ..errors import V2VError
from ..p2v import config as p2vconfig
from ..p2v.values import check_field, check_text, parse_value
from . import imagefiles, pack, payload
from .rootfs import Base

IDENTITY = "/etc/pyv2v/id_p2v"
BASE_CMDLINE = "quiet"
SERIAL = "console=tty0 console=ttyS0,115200n8"


@dataclass(frozen=True)
class Outputs:
    iso: Path | None
    pxe: Path | None
    cmdline: str
    secret: bool


def config_lines(settings: list[tuple[str, str]]) -> list[str]:
    """Canonical `p2v.* = value` lines for `settings` (keys with or without p2v., aliases
    allowed), each value checked by p2v's own field table."""
    specs: dict[str, p2vconfig.Spec] = {}
    for _attr, spec in p2vconfig.specs():
        specs[spec.key] = spec
        if spec.alias:
            specs[spec.alias] = spec
    lines = []
    for key, value in settings:
        k = key if key.startswith("p2v.") else "p2v." + key
        if k not in specs:
            raise V2VError(f"unknown p2v setting {key!r} (see p2v --help for the p2v.* keys)")
        spec = specs[k]
        if spec.secret:
            raise V2VError(
                f"{spec.key} would be readable by anyone holding the media: bake an "
                "identity key (--identity) instead"
            )
        check_text(spec.key, value)
        check_field(spec, parse_value(spec, value))
        text = f'"{value}"' if not value or any(c.isspace() for c in value) else value
        lines.append(f"{spec.key}={text}")
    return lines


def write_config(tree: Path, settings: list[tuple[str, str]], identity: Path | None) -> None:
    lines = [
        "# baked into these media by p2v-make-media; the kernel command line and the",
        "# console UI override these settings",
        *config_lines(settings),
    ]
    if identity is not None:
        try:
            key = identity.read_bytes()
        except OSError as e:
            raise V2VError(f"cannot read the identity key {identity}: {e.strerror}") from None
        if b"PRIVATE KEY" not in key:
            raise V2VError(f"{identity} is not an OpenSSH private key")
        _write(tree, IDENTITY, key, 0o600)
        lines.append(f"p2v.auth.identity.url=file://{IDENTITY}")
    _write(tree, imagefiles.CONF, ("\n".join(lines) + "\n").encode(), 0o644)


def _write(tree: Path, path: str, data: bytes, mode: int) -> None:
    dst = tree / path.lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(dst, mode)


def build_layer(
    base: Base, tree: Path, settings: list[tuple[str, str]], identity: Path | None
) -> None:
    """The layer's tree: units and scripts, the current p2v code (compiled when this Python
    is the image's), the baked configuration."""
    imagefiles.write_all(str(tree))
    site = str(base.manifest["site_packages"])
    payload.install_pyv2v(str(tree) + site)
    if str(base.manifest["python"]) == "{}.{}".format(*sys.version_info[:2]):
        compileall.compile_dir(
            str(tree) + site + "/pyv2v",
            ddir=site + "/pyv2v",
            quiet=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    write_config(tree, settings, identity)


def grub_cfg(cmdline: str, serial_default: bool) -> str:
    entry = 'menuentry "{title}" {{\n  linux /boot/vmlinuz {args}\n  initrd /boot/initrd.img\n}}\n'
    return (
        "insmod all_video\nset gfxpayload=keep\nset timeout=5\n"
        f"set default={1 if serial_default else 0}\n"
        "if serial --unit=0 --speed=115200; then\n"
        "  terminal_input --append serial\n  terminal_output --append serial\nfi\n"
        + entry.format(title="pyv2v p2v: convert this machine", args=cmdline)
        + entry.format(title="pyv2v p2v (serial console ttyS0)", args=f"{cmdline} {SERIAL}")
    )


def make(
    base: Base,
    out: Path,
    *,
    settings: list[tuple[str, str]],
    identity: Path | None,
    append: str = "",
    serial: bool = False,
    iso: bool = True,
    pxe: bool = True,
) -> Outputs:
    """Write `out`/p2v.iso and `out`/pxe/ from `base` with the given baked configuration."""
    check_text("--append", append)
    secret = identity is not None
    epoch = int(str(base.manifest["recipe"]["epoch"]))  # type: ignore[index]
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        tree = work / "layer"
        tree.mkdir()
        build_layer(base, tree, settings, identity)
        pack.layer(tree, work / "layer.cpio", epoch)
        initrd = work / "initrd.img"
        fd = os.open(initrd, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            with open(base.initrd, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
            f.write(b"\0" * (-f.tell() % 4))  # the kernel wants the next archive 4-aligned
            with open(work / "layer.cpio", "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
        cmdline = " ".join(w for w in (BASE_CMDLINE, append) if w)
        pxe_cmdline = f"{cmdline} {SERIAL}" if serial else cmdline
        iso_path = (
            _iso(base, out, work, initrd, grub_cfg(cmdline, serial), epoch, secret) if iso else None
        )
        pxe_dir = _pxe(base, out, initrd, pxe_cmdline, secret) if pxe else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Outputs(iso_path, pxe_dir, pxe_cmdline, secret)


def _iso(
    base: Base, out: Path, work: Path, initrd: Path, cfg: str, epoch: int, secret: bool
) -> Path:
    tree = work / "iso"
    (tree / "boot" / "grub").mkdir(parents=True)
    shutil.copyfile(base.kernel, tree / "boot" / "vmlinuz")
    os.link(initrd, tree / "boot" / "initrd.img")
    (tree / "boot" / "grub" / "grub.cfg").write_text(cfg)
    tmp = out / "p2v.iso.tmp"
    tmp.unlink(missing_ok=True)
    # Reproducible: every date in the ISO (volume, files, the GPT GUID derived from the volume
    # date) is the recipe's epoch, and the EFI image's FAT serial (mformat picks it at random;
    # grub-mkrescue has no option for it) is fixed through an mformat wrapper on PATH.
    shim = work / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "mformat").write_text('#!/bin/sh\nexec /usr/bin/mformat -N 50325632 "$@"\n')
    (shim / "mformat").chmod(0o755)
    at = f"={epoch}"
    uuid_date = time.strftime("%Y%m%d%H%M%S00", time.gmtime(epoch))
    process.run(
        ["grub-mkrescue", "-o", str(tmp), str(tree), "--", "-volid", "PYV2V_P2V",
         "-volume_date", "c", at, "-volume_date", "m", at, "-volume_date", "uuid", uuid_date,
         "-volume_date", "all_file_dates", at,
         "-boot_image", "any", "gpt_disk_guid=volume_date_uuid"],
        env={"SOURCE_DATE_EPOCH": str(epoch),
             "PATH": f"{shim}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"},
        timeout=900,
    )
    os.chmod(tmp, 0o600 if secret else 0o644)
    final = out / "p2v.iso"
    os.replace(tmp, final)
    return final


PXELINUX = """# pxelinux.cfg/default for the p2v PXE set (vmlinuz, initrd.img in the TFTP root)
DEFAULT p2v
LABEL p2v
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND {cmdline}
"""


def _pxe(base: Base, out: Path, initrd: Path, cmdline: str, secret: bool) -> Path:
    d = out / "pxe"
    d.mkdir(exist_ok=True)
    shutil.copyfile(base.kernel, d / "vmlinuz")
    tmp = d / "initrd.img.tmp"
    tmp.unlink(missing_ok=True)
    shutil.copyfile(initrd, tmp)
    os.chmod(tmp, 0o600 if secret else 0o644)
    os.replace(tmp, d / "initrd.img")
    (d / "cmdline.txt").write_text(cmdline + "\n")
    (d / "pxelinux.cfg").mkdir(exist_ok=True)
    (d / "pxelinux.cfg" / "default").write_text(PXELINUX.format(cmdline=cmdline))
    return d
