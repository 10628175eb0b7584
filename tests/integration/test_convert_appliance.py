"""The Linux converter's work, read back from inside the converted guests with the real appliance.

The session conversions of v2v_fixtures (`v2v -i disk` of debian12-physical: BIOS, /dev/sdaN
names, MODULES=list without virtio, open-vm-tools; and of debian12-uefi without its \\EFI\\BOOT
fallback: GPT, ESP, LVM, UUIDs) are opened again through a qcow2 overlay of their output, and
the converter's changes are checked inside the guest (the e2e tests boot the same outputs).
Converting each fixture once per session keeps `make test` short.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyv2v.v2v.appliance import Appliance
from pyv2v.v2v.convert.guest import LibguestfsGuest
from pyv2v.v2v.convert.linux.packages import GUEST_ENV
from pyv2v.v2v.types import GuestCaps

pytestmark = [pytest.mark.slow]

BOOT_FILES = ("/etc/fstab", "/boot/grub/grub.cfg", "/etc/default/grub",
              "/etc/initramfs-tools/conf.d/resume")


@dataclass
class Converted:
    overlay: Path
    caps: GuestCaps
    mac: str
    files: dict[str, str] = field(default_factory=dict)
    initramfs: list[str] = field(default_factory=list)
    dpkg_status: str = ""
    links: dict[str, str] = field(default_factory=dict)
    efi_fallback: bool = False


def read_back(disk: Path, fmt: str, xml: Path, workdir: Path) -> Converted:
    """Open an overlay of a converted disk and collect what the assertions need."""
    from lxml import etree

    root = etree.parse(str(xml)).getroot()
    mac = root.find("./devices/interface/mac").get("address")
    firmware = "uefi" if root.find("./os/loader") is not None else "bios"
    overlay = workdir / "readback.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(disk),
                    str(overlay)], check=True)
    app = Appliance([str(overlay)])
    try:
        inspect = app.inspect(app.roots()[0])
        app.mount(inspect)
        guest = LibguestfsGuest(app.g)
        kernel = sorted(n.removeprefix("initrd.img-") for n in guest.ls("/boot")
                        if n.startswith("initrd.img-"))[-1]
        caps = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga",
                         machine=root.find("./os/type").get("machine"), arch=inspect.arch,
                         firmware=firmware, kernel=kernel)
        c = Converted(overlay, caps, mac)
        c.files = {p: guest.read_text(p) for p in BOOT_FILES if guest.is_file(p)}
        c.dpkg_status = guest.read_text("/var/lib/dpkg/status")
        c.links = {p: guest.read_text(p) for p in guest.glob("/etc/systemd/network/*.link")}
        out = guest.command_env(["lsinitramfs", f"/boot/initrd.img-{kernel}"], GUEST_ENV)
        c.initramfs = out.splitlines()
        c.efi_fallback = guest.is_file("/boot/efi/EFI/BOOT/BOOTX64.EFI")
    finally:
        app.close()
    return c


@pytest.fixture(scope="module")
def physical(converted_local: Any, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    assert converted_local.rc == 0, converted_local.stderr[-2000:]
    out = converted_local.outdir
    return read_back(out / "deb12-sda", "raw", out / "deb12.xml",
                     tmp_path_factory.mktemp("readback-physical"))


@pytest.fixture(scope="module")
def uefi(converted_uefi: Any, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    assert converted_uefi.rc == 0, converted_uefi.stderr[-2000:]
    out = converted_uefi.outdir
    return read_back(out / "deb12uefi-sda", "qcow2", out / "deb12uefi.xml",
                     tmp_path_factory.mktemp("readback-uefi"))


def assert_converted(c: Converted) -> None:
    assert c.caps.block_bus == "virtio-blk" and c.caps.net_bus == "virtio-net"
    status = c.dpkg_status.split("\n\n")
    assert not any(s.startswith("Package: open-vm-tools\n") for s in status), \
        "open-vm-tools is still in the dpkg database"
    for path, text in c.files.items():
        assert "/dev/sd" not in text and "/dev/loop" not in text, f"{path}: {text}"
    assert any(p.endswith("/virtio_blk.ko") or "/virtio_blk.ko." in p for p in c.initramfs)
    assert any("/virtio_net.ko" in p for p in c.initramfs)
    link = c.links.get("/etc/systemd/network/10-pyv2v-eth0.link", "")
    assert f"MACAddress={c.mac}" in link and "Name=eth0" in link


def test_physical_converted_in_guest(physical: Converted) -> None:
    assert_converted(physical)
    assert physical.caps.firmware == "bios" and physical.caps.machine == "pc"
    fstab = physical.files["/etc/fstab"]
    assert "/dev/vda2" in fstab and "/dev/vda1" in fstab
    grub = physical.files["/boot/grub/grub.cfg"]
    assert f"/vmlinuz-{physical.caps.kernel} root=/dev/vda2 " in grub
    assert "console=ttyS0,115200" in grub          # serial console kept


def test_uefi_converted_in_guest(uefi: Converted) -> None:
    assert_converted(uefi)
    assert uefi.caps.firmware == "uefi"
    assert uefi.efi_fallback
