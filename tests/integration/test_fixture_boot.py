"""The guest fixtures: mirror discovery, recipe keys, the build lock, what the images contain,
and that they boot under qemu without ever being written (that unconverted debian12-physical does
not boot on virtio-blk: test_verify_boot.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pyv2v import accel
from pyv2v.media.aptsource import find_mirror, from_deb822, from_sources_list
from pyv2v_harness.fixtures import builder, load_recipe, manifest, recipe_names

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_deb822() -> None:
    assert from_deb822(DEB822, "bookworm") == "http://mirror.example/debian"
    assert from_deb822(DEB822, "bookworm-security") == "http://mirror.example/debian-security"
    assert from_deb822(DEB822, "trixie") is None
    disabled = DEB822.replace("Types: deb\n#", "Enabled: no\nTypes: deb\n#", 1)
    assert from_deb822(disabled, "bookworm") is None
    assert from_deb822(DEB822.replace("Types: deb", "Types: deb-src"), "bookworm") is None


def test_mirror_from_sources_list(tmp_path: Path) -> None:
    text = ("# comment\ndeb-src http://src.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n")
    assert from_sources_list(text, "bookworm") == "http://m.example/debian"
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(text)
    assert find_mirror("bookworm", str(tmp_path)) == "http://m.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert find_mirror("bookworm", str(tmp_path)) == "http://mirror.example/debian"
    with pytest.raises(Exception, match="no apt source"):
        find_mirror("sid", str(tmp_path))


def test_this_machines_mirror() -> None:
    assert find_mirror("bookworm").startswith(("http://", "https://", "file:"))


def test_recipes_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"debian12-physical", "debian12-uefi"} <= set(recipe_names())
    phys, uefi = load_recipe("debian12-physical"), load_recipe("debian12-uefi")
    assert phys.key != uefi.key and len(phys.key) == 64
    assert load_recipe("debian12-physical").key == phys.key
    monkeypatch.setenv("PYV2V_FIXTURE_CACHE", str(tmp_path))
    assert builder.image_path("debian12-physical") == tmp_path / f"{phys.image_stem}.raw"
    for r in (phys, uefi):
        assert not any("virtio" in m for m in r.initramfs_modules)
        assert "net.ifnames=0" in r.kernel_cmdline and "console=ttyS0" in r.kernel_cmdline
    with pytest.raises(ValueError, match="unknown fixture recipe"):
        load_recipe("no-such-guest")


def test_concurrent_requests_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYV2V_FIXTURE_CACHE", str(tmp_path))
    builds: list[Path] = []

    def fake_build(recipe: Any, image: Path, cache: Path) -> dict[str, object]:
        builds.append(image)
        assert image.name.endswith(".raw.tmp")
        image.write_bytes(b"built")
        time.sleep(1)
        return {"recipe": recipe.name}

    monkeypatch.setattr(builder, "build", fake_build)
    stale = builder.image_path("debian12-physical").with_suffix(".raw.tmp")
    stale.write_bytes(b"a crashed build")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        builder.ensure_image("debian12-physical"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(builds) == 1
    assert len(results) == 3 and len(set(results)) == 1
    final = results[0]
    assert final.read_bytes() == b"built" and not stale.exists()
    assert manifest(final)["sha256"] == builder.sha256_file(final)


# --- the real images (built on first use, then cached) -------------------------------------


def _guestfs_read(image: Path, paths: list[str]) -> dict[str, str]:
    """Read files from the image read-only through libguestfs (never mounted on the host)."""
    import guestfs

    accel.apply_to_environ()
    os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
    g = guestfs.GuestFS(python_return_dict=True)
    try:
        g.add_drive_opts(str(image), format="raw", readonly=True)
        g.launch()
        g.mount_ro("/dev/sda2", "/")
        g.mount_ro("/dev/sda1", "/boot")
        return {p: g.cat(p) for p in paths}
    finally:
        g.close()


@pytest.mark.slow
def test_physical_config_names_sda(debian12_physical: Path) -> None:
    files = _guestfs_read(debian12_physical, [
        "/etc/fstab", "/boot/grub/grub.cfg", "/etc/default/grub", "/etc/hostname",
        "/etc/network/interfaces", "/etc/initramfs-tools/initramfs.conf",
        "/etc/initramfs-tools/modules", "/etc/systemd/system/pyv2v-marker.service",
        "/var/lib/dpkg/status"])
    installed = {blk.split("\n", 1)[0].removeprefix("Package: ")
                 for blk in files.pop("/var/lib/dpkg/status").split("\n\n")
                 if "Status: install ok installed" in blk}
    assert {"open-vm-tools", "isc-dhcp-client", "ifupdown", "grub-pc",
            "linux-image-amd64"} <= installed
    fstab, grub_cfg = files["/etc/fstab"], files["/boot/grub/grub.cfg"]
    assert "/dev/sda2\t/\text4" in fstab and "/dev/sda1\t/boot\text4" in fstab
    assert "UUID=" not in fstab
    kernel_lines = [ln for ln in grub_cfg.splitlines() if ln.strip().startswith("linux")]
    assert kernel_lines and all("root=/dev/sda2 " in ln for ln in kernel_lines)
    assert all("console=ttyS0,115200" in ln and "net.ifnames=0" in ln for ln in kernel_lines)
    for name, text in files.items():
        assert "/dev/loop" not in text, name
    assert "GRUB_DISABLE_LINUX_UUID=\"true\"" in files["/etc/default/grub"]
    assert "serial" in files["/etc/default/grub"]
    assert files["/etc/hostname"].strip() == "debian12-physical"
    assert "allow-hotplug eth0" in files["/etc/network/interfaces"]
    assert "iface eth0 inet dhcp" in files["/etc/network/interfaces"]
    assert "\nMODULES=list" in files["/etc/initramfs-tools/initramfs.conf"]
    assert "virtio" not in files["/etc/initramfs-tools/modules"]
    mods = manifest(debian12_physical)["initramfs_modules"]
    assert isinstance(mods, list)
    assert {"ahci", "ata_piix", "sd_mod", "mptspi", "vmw_pvscsi", "ext4"} <= set(mods)
    assert not [m for m in mods if "virtio" in m]


@pytest.mark.slow
@pytest.mark.boot
def test_physical_boots_on_ide_with_network_and_stays_unwritten(
        debian12_physical: Path, boot: Any) -> None:
    before = builder.sha256_file(debian12_physical)
    assert before == manifest(debian12_physical)["sha256"]
    r = boot(debian12_physical, bus="ide", nic_model="e1000")
    assert r.outcome == "login", f"{r}\n(console log: {r.console_log})"
    assert r.net_up, r.markers
    assert "eth0" in r.up_interfaces, r.markers
    assert builder.sha256_file(debian12_physical) == before


@pytest.mark.slow
def test_uefi_layout(debian12_uefi: Path) -> None:
    m = manifest(debian12_uefi)
    fstab = str(m["fstab"])
    lines = [ln.split() for ln in fstab.splitlines() if ln and not ln.startswith("#")]
    assert {ln[1] for ln in lines} == {"/", "/boot", "/boot/efi"}
    assert all(ln[0].startswith("UUID=") for ln in lines)
    devices = m["devices"]
    assert isinstance(devices, dict)
    assert devices["/"]["guest"] == "/dev/mapper/vg0-root"
    assert devices["/boot/efi"]["fs"] == "vfat"
    cmdlines = m["kernel_cmdlines"]
    assert isinstance(cmdlines, list) and cmdlines
    assert all("root=/dev/mapper/vg0-root" in ln for ln in cmdlines)
    mods = m["initramfs_modules"]
    assert isinstance(mods, list) and "dm_mod" in mods and "ahci" in mods
    assert not [x for x in mods if "virtio" in x]


@pytest.mark.slow
@pytest.mark.boot
def test_uefi_boots_under_ovmf(debian12_uefi: Path, boot: Any) -> None:
    """On SATA (q35's AHCI, what a UEFI machine has); IDE was dropped to save a boot: the
    BIOS fixture's IDE boot covers that bus."""
    r = boot(debian12_uefi, bus="sata", firmware="uefi")
    assert r.outcome == "login", f"{r}\n(console log: {r.console_log})"
    assert "eth0" in r.up_interfaces, r.markers
