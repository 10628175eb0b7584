"""The host-side initramfs patch (initrdpatch, cpio): real kernel modules, real depmod, a
synthetic initramfs-tools image shaped like Debian 12's (microcode archive + gzip main archive,
usr-merged ``lib`` symlink); and the fallback to update-initramfs when it cannot patch."""

from __future__ import annotations

import glob
import gzip
import lzma
import os
import subprocess
from pathlib import Path

import pytest

from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.linux.cpio import (
    S_IFDIR,
    S_IFLNK,
    S_IFREG,
    CpioError,
    Entry,
    read_newc,
    split_image,
    write_newc,
)
from pyv2v.v2v.convert.linux.debian import DebianConverter
from pyv2v.v2v.convert.linux.initrdpatch import NotPatchable, append_drivers, resolve
from pyv2v.v2v.convert.linux.kernels import installed_kernels

VER = "6.1.0-99-amd64"
DRIVERS = ["virtio_pci", "virtio_blk"]
INITRD = f"/boot/initrd.img-{VER}"
# The appliance kernel's modules (libguestfs needs them on the host): real ELF modules for depmod.
HOST = sorted(glob.glob("/lib/modules/*/kernel/drivers/block/virtio_blk.ko*"))


def _host_moddir() -> Path:
    if not HOST:
        pytest.fail("no kernel modules on this host (libguestfs's appliance needs them)")
    return Path(HOST[-1]).parents[3]


def _guest(tmp_path: Path, *, conf: dict[str, bytes] | None = None, compress: bytes = b"gz",
           modules_early: bool = False) -> FakeGuest:
    """A guest with xz-compressed virtio modules and an image that already has virtio_ring
    (in the main archive, or as Debian 13 does, in an uncompressed early archive)."""
    host = _host_moddir()
    mods = {"virtio_blk": "drivers/block", "virtio_pci": "drivers/virtio",
            "virtio_pci_legacy_dev": "drivers/virtio", "virtio_pci_modern_dev": "drivers/virtio",
            "virtio": "drivers/virtio", "virtio_ring": "drivers/virtio"}
    moddir = tmp_path / "lib" / "modules" / VER
    dep = []
    for name, sub in mods.items():
        src = next(iter(glob.glob(f"{host}/kernel/{sub}/{name}.ko*")))
        data = open(src, "rb").read()
        data = lzma.decompress(data) if src.endswith(".xz") else data
        (moddir / "kernel" / sub).mkdir(parents=True, exist_ok=True)
        (moddir / "kernel" / sub / f"{name}.ko.xz").write_bytes(
            lzma.compress(data, check=lzma.CHECK_CRC32))
    for line in (host / "modules.dep").read_text().splitlines():
        path = line.split(":")[0]
        if any(path.endswith(f"/{n}.ko") or path.endswith(f"/{n}.ko.xz") for n in mods):
            dep.append(line.replace(".ko.xz", ".ko").replace(".ko", ".ko.xz"))
    (moddir / "modules.dep").write_text("\n".join(dep) + "\n")
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / f"vmlinuz-{VER}").write_bytes(b"")
    ring = lzma.decompress((moddir / "kernel/drivers/virtio/virtio_ring.ko.xz").read_bytes())
    mdir = f"usr/lib/modules/{VER}"
    main = [("usr", Entry(S_IFDIR | 0o755, b"")), ("usr/lib", Entry(S_IFDIR | 0o755, b"")),
            ("lib", Entry(S_IFLNK | 0o777, b"usr/lib")),
            ("usr/lib/modules", Entry(S_IFDIR | 0o755, b"")), (mdir, Entry(S_IFDIR | 0o755, b"")),
            (f"{mdir}/kernel", Entry(S_IFDIR | 0o755, b"")),
            (f"{mdir}/kernel/drivers", Entry(S_IFDIR | 0o755, b"")),
            (f"{mdir}/kernel/drivers/virtio", Entry(S_IFDIR | 0o755, b"")),
            (f"{mdir}/kernel/drivers/virtio/virtio_ring.ko", Entry(S_IFREG | 0o644, ring)),
            (f"{mdir}/modules.order", Entry(S_IFREG | 0o644, b"")),
            ("conf", Entry(S_IFDIR | 0o755, b"")),
            ("conf/initramfs.conf", Entry(S_IFREG | 0o644, b"MODULES=list\n")),
            ("conf/modules", Entry(S_IFREG | 0o644, b"ahci \next4 \n"))]
    main += [(k, Entry(S_IFREG | 0o644, v)) for k, v in (conf or {}).items()]
    first = [("kernel", Entry(S_IFDIR | 0o755, b"")),
             ("kernel/x86/microcode/GenuineIntel.bin", Entry(S_IFREG | 0o644, b"u"))]
    if modules_early:
        first += [e for e in main if e[0].startswith("usr/lib/modules") and "order" not in e[0]]
        main = [e for e in main if not e[0].endswith(".ko")]
    early = write_newc(first)
    packers = {b"gz": gzip.compress, b"xz": lambda b: lzma.compress(b, check=lzma.CHECK_CRC32),
               b"zst": lambda b: subprocess.run(["zstd", "-q", "-1", "-c"], input=b,
                                                capture_output=True, check=True).stdout}
    body = packers[compress](write_newc(main)) if compress in packers else compress
    (tmp_path / INITRD.lstrip("/")).write_bytes(early + b"\0" * 512 + body)
    return FakeGuest(tmp_path)


@pytest.mark.parametrize("compress, early", [(b"gz", False), (b"xz", False), (b"zst", True)])
def test_appends_the_drivers_with_indexes_and_force_load(tmp_path: Path, compress: bytes,
                                                        early: bool) -> None:
    g = _guest(tmp_path, compress=compress, modules_early=early)
    before = g.read(INITRD)
    append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)
    after = g.read(INITRD)
    first = before[:before.index(b"\0" * 512)]
    assert after.startswith(first + b"\0" * 512) and after != before    # microcode kept
    old, new = split_image(before), split_image(after)
    assert new.method == old.method == {b"gz": "gzip", b"xz": "xz", b"zst": "zstd"}[compress]
    assert new.main.startswith(old.main[:old.trailer_at])      # every old entry, unchanged
    added, end, _ = read_newc(new.main, old.trailer_at)
    assert end == len(new.main)
    assert all(e.mtime > 0 for e in added.values())
    mdir = f"usr/lib/modules/{VER}"
    kos = sorted(n.rsplit("/", 1)[1] for n in added if n.endswith(".ko"))
    assert kos == ["virtio.ko", "virtio_blk.ko", "virtio_pci.ko", "virtio_pci_legacy_dev.ko",
                   "virtio_pci_modern_dev.ko"]                   # virtio_ring was there
    blk = added[f"{mdir}/kernel/drivers/block/virtio_blk.ko"].data
    assert blk == lzma.decompress(
        g.read(f"/lib/modules/{VER}/kernel/drivers/block/virtio_blk.ko.xz"))
    assert added[f"{mdir}/kernel/drivers/block"].mode == S_IFDIR | 0o755
    assert not any(n == "lib" or n.startswith("lib/") for n in added)   # the symlink survives
    assert f"{mdir}/kernel/drivers/virtio" not in added                 # existing dir untouched
    dep = added[f"{mdir}/modules.dep"].data.decode()
    assert "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko " \
           "kernel/drivers/virtio/virtio_ring.ko" in dep
    assert "virtio:d00000002v* virtio_blk" in added[f"{mdir}/modules.alias"].data.decode()
    assert f"{mdir}/modules.dep.bin" in added and f"{mdir}/modules.alias.bin" in added
    assert added["conf/modules"].data == b"ahci \next4 \nvirtio_pci\nvirtio_blk\n"
    assert new.entries["conf/initramfs.conf"] == old.entries["conf/initramfs.conf"]
    assert new.entries[f"{mdir}/modules.dep"].data.decode() == dep      # later entry wins


@pytest.mark.parametrize("conf, why", [
    ({"conf/conf.d/resume": b"RESUME=/dev/sda3\n"}, "names a source device"),
    ({"cryptroot/crypttab": b"root_crypt /dev/disk/by-id/ata-X-part2 none luks\n"},
     "names a source device"),
])
def test_source_device_names_in_the_image_refuse(tmp_path: Path, conf: dict[str, bytes],
                                                 why: str) -> None:
    g = _guest(tmp_path, conf=conf)
    before = g.read(INITRD)
    with pytest.raises(NotPatchable, match=why):
        append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)
    assert g.read(INITRD) == before


def test_uuid_names_and_comments_are_fine(tmp_path: Path) -> None:
    g = _guest(tmp_path, conf={"conf/conf.d/resume": b"# was /dev/sda3\nRESUME=UUID=1234\n"})
    append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)


def test_unknown_format_and_trailing_archives_refuse(tmp_path: Path) -> None:
    g = _guest(tmp_path, compress=b"BZh91AY&SY")
    with pytest.raises(NotPatchable, match="unknown compression"):
        append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)
    g = _guest(tmp_path / "again")
    append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)
    with pytest.raises(NotPatchable, match="already has the drivers"):  # patched already
        append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)
    g.write(INITRD, g.read(INITRD) + b"\x1f\x8bjunk")
    with pytest.raises(NotPatchable, match="data follows|unknown compression"):
        append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)


def test_guest_paths_never_leave_the_work_directory(tmp_path: Path) -> None:
    g = _guest(tmp_path)
    dep = tmp_path / "lib/modules" / VER / "modules.dep"
    dep.write_text(dep.read_text().replace("kernel/drivers/block/virtio_blk.ko.xz:",
                                           "../../../../tmp/x/virtio_blk.ko.xz:"))
    with pytest.raises(NotPatchable, match="unsafe module path"):
        append_drivers(g, installed_kernels(g)[0], INITRD, DRIVERS)


def test_resolve_follows_image_symlinks() -> None:
    e = {"lib": Entry(S_IFLNK, b"usr/lib"), "usr/lib/x": Entry(S_IFLNK, b"/opt/y"),
         "loop": Entry(S_IFLNK, b"loop")}
    assert resolve(e, "lib/modules/V") == "usr/lib/modules/V"
    assert resolve(e, "lib/x/z") == "opt/y/z"
    with pytest.raises(NotPatchable, match="loop"):
        resolve(e, "loop/a")


def test_cpio_round_trip_and_truncation() -> None:
    entries = [("a", Entry(S_IFDIR | 0o755, b"")), ("a/b", Entry(S_IFREG | 0o600, b"xyz"))]
    data = write_newc(entries)
    assert read_newc(data) == (dict(entries), len(data), len(data) - 124)
    with pytest.raises(CpioError):
        read_newc(data[:150])


def test_debian_falls_back_to_update_initramfs(tmp_path: Path) -> None:
    g = _guest(tmp_path, conf={"conf/conf.d/resume": b"RESUME=/dev/sda3\n"})
    os.makedirs(tmp_path / "usr/sbin")
    (tmp_path / "usr/sbin/update-initramfs").write_text("")
    (tmp_path / "etc/initramfs-tools").mkdir(parents=True)
    (tmp_path / "etc/initramfs-tools/initramfs.conf").write_text("MODULES=dep\n")
    seen: list[str] = []

    def update(g: FakeGuest, argv: list[str]) -> str:
        seen.append(g.read_text("/etc/initramfs-tools/conf.d/zz-pyv2v-conversion"))
        g.write(INITRD, b"rebuilt")
        return ""
    g.commands["update-initramfs"] = update
    DebianConverter().rebuild_initramfs(g, installed_kernels(g)[0])
    assert g.read(INITRD) == b"rebuilt"
    assert "MODULES=most" in seen[0]                          # for the appliance build only
    assert not (tmp_path / "etc/initramfs-tools/conf.d/zz-pyv2v-conversion").exists()
    assert "virtio_blk" in g.read_text("/etc/initramfs-tools/modules")
    assert g.read_text("/etc/initramfs-tools/initramfs.conf") == "MODULES=dep\n"  # user's own
    assert not list((tmp_path / "etc/initramfs-tools").glob("conf.d/9*"))
