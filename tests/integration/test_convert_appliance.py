"""The Linux converter against the real libguestfs appliance, then a real boot on virtio.

A qcow2 overlay of a cached fixture image (debian12-physical: BIOS, /dev/sdaN names, MODULES=list
without virtio, open-vm-tools; debian12-uefi: GPT, ESP, LVM, UUIDs) is launched, inspected and
mounted exactly as the pipeline does it (one `Appliance`), converted, and then read back through
the same handle.  When the boot checker exists, the converted overlay boots under qemu on
virtio-blk with a virtio-net NIC carrying the pinned MAC, and must reach a login prompt with the
fixture's marker showing eth0 UP with an address.  The fixture image is never written.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyv2v.v2v.appliance import Appliance
from pyv2v.v2v.convert import converter_for
from pyv2v.v2v.convert.guest import LibguestfsGuest
from pyv2v.v2v.convert.linux.packages import GUEST_ENV
from pyv2v.v2v.types import ConvertOptions, GuestCaps, TargetNicPlan

pytestmark = [pytest.mark.slow]

MAC = "52:54:00:5a:7e:01"
BOOT_FILES = ("/etc/fstab", "/boot/grub/grub.cfg", "/etc/default/grub",
              "/etc/initramfs-tools/conf.d/resume")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Converted:
    overlay: Path
    caps: GuestCaps
    seconds: float
    sha_before: str
    sha_after: str = ""
    files: dict[str, str] = field(default_factory=dict)
    initramfs: list[str] = field(default_factory=list)
    dpkg_status: str = ""
    links: dict[str, str] = field(default_factory=dict)
    efi_fallback: bool = False


def convert_image(image: Path, workdir: Path, nics: tuple[TargetNicPlan, ...],
                  prepare: Callable[[Any], None] | None = None) -> Converted:
    """Convert an overlay of `image`; `prepare(g)` may first alter the overlay (not the image)."""
    sha_before = sha256(image)
    overlay = workdir / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image),
                    str(overlay)], check=True)
    app = Appliance([str(overlay)])
    try:
        inspect = app.inspect(app.roots()[0])
        app.mount(inspect)
        if prepare is not None:
            prepare(app.g)
        guest = LibguestfsGuest(app.g)
        start = time.monotonic()
        caps = converter_for(inspect).convert(guest, inspect, ConvertOptions(
            block_bus="virtio-blk", nics=nics))
        took = time.monotonic() - start
        print(f"\n{image.name}: conversion took {took:.1f} s in the appliance")
        c = Converted(overlay, caps, took, sha_before)
        c.files = {p: guest.read_text(p) for p in BOOT_FILES if guest.is_file(p)}
        c.dpkg_status = guest.read_text("/var/lib/dpkg/status")
        c.links = {p: guest.read_text(p) for p in guest.glob("/etc/systemd/network/*.link")}
        out = guest.command_env(["lsinitramfs", f"/boot/initrd.img-{caps.kernel}"], GUEST_ENV)
        c.initramfs = out.splitlines()
        c.efi_fallback = guest.is_file("/boot/efi/EFI/BOOT/BOOTX64.EFI")
        app.trim()
    finally:
        app.close()
    c.sha_after = sha256(image)
    return c


def _bootcheck():  # type: ignore[no-untyped-def]
    try:
        from pyv2v import bootcheck
    except ImportError:
        return None
    return bootcheck


@pytest.fixture(scope="module")
def physical(debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    return convert_image(debian12_physical, tmp_path_factory.mktemp("convert-physical"),
                         (TargetNicPlan(mac=MAC, source_dev="eth0", network="default"),))


@pytest.fixture(scope="module")
def uefi(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    try:
        image = request.getfixturevalue("debian12_uefi")
    except pytest.FixtureLookupError:
        from pyv2v.fixtures import ensure_image
        image = ensure_image("debian12-uefi")
    # No source_dev, as with -i disk: the converter pins the one interface the guest configures.
    # And no \EFI\BOOT (a guest installed without --removable, the usual case): the converter
    # must install the fallback loader for OVMF's empty NVRAM to find.
    return convert_image(Path(image), tmp_path_factory.mktemp("convert-uefi"),
                         (TargetNicPlan(mac=MAC, source_dev=None, network="default"),),
                         prepare=lambda g: g.rm_rf("/boot/efi/EFI/BOOT"))


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
    assert f"MACAddress={MAC}" in link and "Name=eth0" in link
    assert c.sha_before == c.sha_after, "the fixture image was written"


def test_physical_converted_in_guest(physical: Converted) -> None:
    assert_converted(physical)
    assert physical.caps.firmware == "bios" and physical.caps.machine == "pc"
    fstab = physical.files["/etc/fstab"]
    assert "/dev/vda2" in fstab and "/dev/vda1" in fstab
    grub = physical.files["/boot/grub/grub.cfg"]
    assert f"/vmlinuz-{physical.caps.kernel} root=/dev/vda2 " in grub
    assert "console=ttyS0,115200" in grub          # serial console kept


def _boot_and_check(c: Converted, firmware: str) -> None:
    bootcheck = _bootcheck()
    if bootcheck is None:
        pytest.skip("pyv2v.bootcheck is not available")
    r = bootcheck.boot(c.overlay, bus="virtio-blk", fmt="qcow2", firmware=firmware,
                       nic_model="virtio-net-pci", mac=MAC, timeout=900)
    print(f"\nboot ({firmware}): {r.outcome} in {r.seconds:.0f} s; markers {r.markers}")
    assert r.outcome == "login", f"{r.outcome}: {r.detail} (console log {r.console_log})"
    assert "eth0" in r.up_interfaces, f"eth0 not up with an address: {r.markers}"


@pytest.mark.boot
def test_physical_boots_on_virtio_with_network(physical: Converted) -> None:
    _boot_and_check(physical, "bios")


def test_uefi_converted_in_guest(uefi: Converted) -> None:
    assert_converted(uefi)
    assert uefi.caps.firmware == "uefi"
    assert uefi.efi_fallback


@pytest.mark.boot
def test_uefi_boots_under_ovmf_with_network(uefi: Converted) -> None:
    _boot_and_check(uefi, "uefi")
