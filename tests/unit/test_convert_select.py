"""Converter selection, kernel choice, package dependencies, and the smaller conversion stages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.v2v.convert import converter_for
from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.linux import FAMILIES, firstboot, uefi
from pyv2v.v2v.convert.linux.debian import DebianConverter, add_modules, fstab_types
from pyv2v.v2v.convert.linux.kernels import (
    REQUIRED,
    Kernel,
    choose_kernel,
    installed_kernels,
    module_name,
    version_key,
)
from pyv2v.v2v.convert.linux.packages import Dpkg, matches
from pyv2v.v2v.convert.linux.redhat import RedHatConverter
from pyv2v.v2v.convert.linux.suse import SuseConverter, set_initrd_modules
from pyv2v.v2v.types import Inspect

DEBIAN = Inspect(root="/dev/sda2", type="linux", distro="debian", major=12, minor=5,
                 arch="x86_64", product_name="Debian GNU/Linux 12", package_format="deb",
                 package_management="apt")


@pytest.mark.parametrize("distro,family", [
    ("debian", DebianConverter), ("ubuntu", DebianConverter), ("linuxmint", DebianConverter),
    ("kalilinux", DebianConverter), ("rhel", RedHatConverter), ("centos", RedHatConverter),
    ("rocky", RedHatConverter), ("almalinux", RedHatConverter),
    ("oraclelinux", RedHatConverter), ("fedora", RedHatConverter), ("sles", SuseConverter),
    ("opensuse", SuseConverter),
])
def test_families_table(distro: str, family: type) -> None:
    fmt = "deb" if family is DebianConverter else "rpm"
    conv = converter_for(replace(DEBIAN, distro=distro, package_format=fmt))
    assert type(conv) is family
    assert FAMILIES[distro] is family


@pytest.mark.parametrize("change,message", [
    ({"distro": "archlinux", "product_name": "Arch Linux"},
     "converting Arch Linux is not supported: the Linux distribution 'archlinux'"),
    ({"type": "windows", "distro": "windows", "product_name": "Windows XP", "major": 5,
      "minor": 1}, r"converting Windows XP \(5.1\) is not supported: the oldest supported"),
    ({"type": "freebsd", "distro": "freebsd", "product_name": ""},
     "converting freebsd is not supported"),
    ({"package_format": "rpm"}, "uses rpm packages, but the debian family converter needs deb"),
])
def test_unsupported_guests_are_named(change: dict[str, str], message: str) -> None:
    with pytest.raises(V2VError, match=message):
        converter_for(replace(DEBIAN, **change))


# Kernels ---------------------------------------------------------------------------------------

def test_module_names_and_version_order() -> None:
    assert module_name("kernel/drivers/char/hw_random/virtio-rng.ko.xz") == "virtio_rng"
    assert module_name("kernel/drivers/block/virtio_blk.ko.zst\n") == "virtio_blk"
    assert version_key("6.1.0-10-amd64") > version_key("6.1.0-9-amd64")
    assert version_key("5.14.0-362.8.1.el9_3.x86_64") > version_key("5.14.0-284.11.1.el9_2.x86_64")


def _k(version: str, mods: tuple[str, ...] = REQUIRED, builtin: tuple[str, ...] = ()) -> Kernel:
    return Kernel(version, f"/boot/vmlinuz-{version}", frozenset(mods), frozenset(builtin))


def test_choose_newest_virtio_non_debug() -> None:
    ks = [_k("6.5.0+debug"), _k("6.5.0", mods=("virtio_pci",)), _k("6.1.0"), _k("5.10.0")]
    assert choose_kernel(ks).version == "6.1.0"
    assert choose_kernel([_k("6.5.0+debug")]).version == "6.5.0+debug"
    assert choose_kernel([_k("6.1.0", mods=(), builtin=REQUIRED)]).version == "6.1.0"


def test_no_virtio_kernel_is_a_clear_error() -> None:
    with pytest.raises(V2VError, match=r"4\.19\.0 lacks virtio_blk, virtio_scsi, virtio_net"):
        choose_kernel([_k("4.19.0", mods=("virtio_pci",))])
    with pytest.raises(V2VError, match="no installed kernel"):
        choose_kernel([])


def test_installed_kernels_from_a_tree(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/boot/vmlinuz-6.1.0-9-amd64", "k")
    g.write("/boot/vmlinuz-0-rescue-abc", "k")                    # no modules: ignored
    g.write("/lib/modules/6.1.0-9-amd64/modules.dep",
            "kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz\n")
    g.write("/lib/modules/6.1.0-9-amd64/modules.builtin", "kernel/drivers/virtio/virtio_pci.ko\n")
    g.write("/boot/vmlinuz-6.2.0", "k")                           # no modules.dep: tree listed
    g.write("/lib/modules/6.2.0/kernel/drivers/net/virtio_net.ko", "m")
    ks = installed_kernels(g)
    assert [k.version for k in ks] == ["6.2.0", "6.1.0-9-amd64"]
    assert ks[0].modules == {"virtio_net"}
    assert ks[1].has("virtio_blk") and ks[1].has("virtio_pci") and not ks[1].has("virtio_net")


# Packages --------------------------------------------------------------------------------------

STATUS = """\
Package: open-vm-tools
Status: install ok installed
Version: 2:12

Package: open-vm-tools-desktop
Status: install ok installed
Depends: open-vm-tools (= 2:12), libc6

Package: ubuntu-server
Status: install ok installed
Depends: apport,
 open-vm-tools [amd64]

Package: meta-either
Status: install ok installed
Depends: hyperv-daemons | something-else

Package: hyperv-daemons
Status: install ok installed

Package: old-thing
Status: deinstall ok config-files
Depends: hyperv-daemons
"""


def test_dpkg_installed_and_reverse_dependencies(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/var/lib/dpkg/status", STATUS)
    db = Dpkg()
    assert db.installed(g) == {"open-vm-tools", "open-vm-tools-desktop", "ubuntu-server",
                               "meta-either", "hyperv-daemons"}
    doomed = {"open-vm-tools", "open-vm-tools-desktop", "hyperv-daemons"}
    assert db.required_by_others(g, doomed) == {"open-vm-tools": "ubuntu-server"}


def test_package_patterns() -> None:
    pats = ("open-vm-tools", "open-vm-tools-*", "VMwareTools")
    assert matches("open-vm-tools", pats) and matches("open-vm-tools-desktop", pats)
    assert not matches("open-vm-toolsy", pats) and not matches("vmwaretools", pats)


# Initramfs configuration -----------------------------------------------------------------------

def test_initramfs_tools_modules_are_appended_once() -> None:
    assert add_modules("ahci\nvirtio-blk\n", ["virtio_blk", "virtio_net"]) == \
        "ahci\nvirtio-blk\n# Added by pyv2v: virtio drivers for KVM\nvirtio_net\n"
    assert add_modules("virtio_net\n", ["virtio_net"]) == "virtio_net\n"
    assert fstab_types("/dev/vda2 / ext4 x 0 1\n#/dev/x /usr xfs\n/dev/vda3 /usr xfs d 0 0\n"
                       "UUID=1 /boot auto d 0 0\n") == ["ext4", "xfs"]


def test_suse_initrd_modules() -> None:
    text = 'INITRD_MODULES="xenblk ahci"\nDOMU_INITRD_MODULES="xennet"\nOTHER="xenblk"\n'
    assert set_initrd_modules(text, ["virtio_blk", "ahci"]) == \
        'INITRD_MODULES="ahci virtio_blk"\nDOMU_INITRD_MODULES=""\nOTHER="xenblk"\n'


def test_missing_update_initramfs_is_a_clear_error(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    with pytest.raises(V2VError, match="update-initramfs was not found"):
        DebianConverter().build_initramfs(g, _k("6.1.0"), "/boot/initrd.img-6.1.0", [])


def test_unchanged_initramfs_is_an_error(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path, {"update-initramfs": lambda g, argv: ""})
    g.write("/usr/sbin/update-initramfs", "#!/bin/sh\n")
    g.write("/boot/initrd.img-6.1.0", "old")
    with pytest.raises(V2VError, match="left /boot/initrd.img-6.1.0 unchanged"):
        DebianConverter().rebuild_initramfs(g, _k("6.1.0"))


# First boot, UEFI, SELinux ---------------------------------------------------------------------

def test_firstboot_needs_systemd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = FakeGuest(tmp_path)
    assert not firstboot.queue(g, "10-x", "true\n")
    assert "does not use systemd" in capsys.readouterr().err
    g.write("/lib/systemd/systemd", "")
    assert firstboot.queue(g, "10-x", "true\n") and firstboot.queue(g, "20-y", "true\n")
    assert g.ls(firstboot.SCRIPT_DIR) == ["10-x", "20-y"]
    assert g.readlink(firstboot.WANTS) == "../pyv2v-firstboot.service"
    unit = g.read_text(firstboot.UNIT)
    assert "Type=simple" in unit and "After=network-online.target" in unit


def test_uefi_fallback_kept_when_present(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/boot/efi/EFI/BOOT/bootx64.efi", "existing")
    g.write("/boot/efi/EFI/debian/grubx64.efi", "grub")
    assert uefi.ensure_fallback(g, "x86_64", ("debian",)) is None
    assert g.ls("/boot/efi/EFI/BOOT") == ["bootx64.efi"]


def test_uefi_fallback_from_grub_only(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/boot/efi/EFI/other/x.efi", "x")
    g.write("/boot/efi/EFI/debian/grubx64.efi", "grub")
    g.write("/boot/efi/EFI/debian/fbx64.efi", "fallback")
    assert uefi.ensure_fallback(g, "x86_64", ("debian",)) == "/boot/efi/EFI/debian/grubx64.efi"
    assert g.ls("/boot/efi/EFI/BOOT") == ["BOOTX64.EFI"]
    assert g.read_text("/boot/efi/EFI/BOOT/BOOTX64.EFI") == "grub"


@pytest.mark.parametrize("config,relabel", [
    ("SELINUX=enforcing\n", True), ("SELINUX=permissive\n", True),
    ("SELINUX=disabled\n", False), (None, False)])
def test_selinux_relabel(tmp_path: Path, config: str | None, relabel: bool) -> None:
    g = FakeGuest(tmp_path)
    if config:
        g.write("/etc/selinux/config", config)
    RedHatConverter().selinux_relabel(g)
    assert g.exists("/.autorelabel") == relabel
