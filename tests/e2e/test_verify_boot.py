"""`--verify-boot`'s boot judge (pyv2v.v2v.verifyboot) on real guests: a converted guest that
boots with its network, and an unconverted source on virtio that stops in the initramfs.  (A
guest whose network is broken on purpose is in test_p2v_v2v.py, on the p2v output.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from v2v_fixtures import Conversion, sha256

from pyv2v.v2v import verifyboot
from pyv2v.v2v.types import GuestCaps, TargetDisk
from pyv2v_harness import demo

pytestmark = [pytest.mark.slow, pytest.mark.boot]

BIOS_VIRTIO = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga", machine="pc",
                        arch="x86_64", firmware="bios")


def test_converted_guest_verified_with_its_dhcp_address(converted_local: Conversion) -> None:
    assert converted_local.rc == 0, converted_local.stderr[-2000:]
    disk = converted_local.outdir / "deb12-sda"
    mac = demo.first_mac(converted_local.outdir / "deb12.xml")
    before = disk.stat().st_mtime_ns
    v = verifyboot.verify((TargetDisk(str(disk), "raw", "vda", 0),), BIOS_VIRTIO, [mac])
    print(v.line())
    assert v.ok and v.outcome == "login", v.console_tail
    assert v.addresses == {mac: "10.0.2.15"}, v.line()
    assert disk.stat().st_mtime_ns == before          # booted on a throwaway overlay


def test_unconverted_source_reports_the_initramfs_shell(debian12_physical: Path) -> None:
    """Also the fixtures' negative control: unconverted, debian12-physical does not boot on
    virtio-blk (its initramfs has no virtio driver), so a converted guest's boot proves the
    conversion."""
    sha = sha256(debian12_physical)
    v = verifyboot.verify((TargetDisk(str(debian12_physical), "raw", "vda", 0),), BIOS_VIRTIO,
                          ["52:54:00:12:34:56"])
    print(v.line())
    assert not v.ok and v.outcome == "initramfs", v.line()
    assert "/dev/sda2" in v.detail or "Gave up waiting" in v.detail, v.detail
    assert v.console_tail and v.console_tail[-1].startswith("(initramfs)")
    with pytest.raises(Exception, match="did not boot as expected: initramfs"):
        verifyboot.report(v)
    assert sha256(debian12_physical) == sha
