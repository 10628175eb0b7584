"""Device-name mapping and token-aware rewriting (convert/linux/devices.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.devnames import drive_index, drive_letters
from pyv2v.errors import V2VError
from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.linux.bootconfig import check_device_names, rewrite_device_names
from pyv2v.v2v.convert.linux.devices import DeviceMapper


@pytest.mark.parametrize("index,name", [(0, "a"), (1, "b"), (25, "z"), (26, "aa"), (27, "ab"),
                                        (51, "az"), (52, "ba"), (701, "zz"), (702, "aaa")])
def test_drive_names_round_trip(index: int, name: str) -> None:
    assert drive_letters(index) == name
    assert drive_index(name) == index


@pytest.mark.parametrize("src,blk,scsi", [
    ("/dev/sda", "/dev/vda", "/dev/sda"),
    ("/dev/sda1", "/dev/vda1", "/dev/sda1"),
    ("/dev/sda10", "/dev/vda10", "/dev/sda10"),
    ("/dev/sdb2", "/dev/vdb2", "/dev/sdb2"),
    ("/dev/sdab3", "/dev/vdab3", "/dev/sdab3"),
    ("/dev/hda1", "/dev/vda1", "/dev/sda1"),
    ("/dev/hdc", "/dev/vdc", "/dev/sdc"),
    ("/dev/xvda2", "/dev/vda2", "/dev/sda2"),
    ("/dev/vdb", "/dev/vdb", "/dev/sdb"),
    ("/dev/cciss/c0d0", "/dev/vda", "/dev/sda"),
    ("/dev/cciss/c0d1p3", "/dev/vdb3", "/dev/sdb3"),
    ("/dev/nvme0n1", "/dev/vda", "/dev/sda"),
    ("/dev/nvme0n1p2", "/dev/vda2", "/dev/sda2"),
    ("/dev/nvme1n1p1", "/dev/vdb1", "/dev/sdb1"),
])
def test_rewrite_each_scheme(src: str, blk: str, scsi: str) -> None:
    assert DeviceMapper("virtio-blk").rewrite(src) == blk
    assert DeviceMapper("virtio-scsi").rewrite(src) == scsi


@pytest.mark.parametrize("text", [
    "UUID=38a9c69c-43fb-41c6-ace7-f7c5852f5d94 / ext4 defaults 0 1",
    "/dev/disk/by-id/ata-Samsung_SSD-part1 /data ext4 defaults 0 2",
    "/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1 /x ext4 defaults 0 2",
    "/dev/mapper/vg0-root / ext4 defaults 0 1",
    "/dev/md0 /srv xfs defaults 0 0",
    "/dev/sdafoo is not a device name",
    "search --set=root (hd0,msdos1)",
    "/dev/sr0 /media/cdrom0 udf,iso9660 user,noauto 0 0",
])
def test_rewrite_leaves_other_names_alone(text: str) -> None:
    assert DeviceMapper("virtio-blk").rewrite(text) == text


def test_rewrite_in_context_and_idempotent() -> None:
    m = DeviceMapper("virtio-blk")
    text = ('linux /vmlinuz root=/dev/sda2 ro resume=/dev/sdb1 console=ttyS0\n'
            'GRUB_CMDLINE_LINUX="root=/dev/sda2"\n/dev/sda1\t/boot\text4\n')
    once = m.rewrite(text)
    assert once == ('linux /vmlinuz root=/dev/vda2 ro resume=/dev/vdb1 console=ttyS0\n'
                    'GRUB_CMDLINE_LINUX="root=/dev/vda2"\n/dev/vda1\t/boot\text4\n')
    assert m.rewrite(once) == once
    assert m.leftovers(once) == []
    assert m.leftovers(text) == ["/dev/sda2", "/dev/sdb1", "/dev/sda2", "/dev/sda1"]
    assert m.seen == {"/dev/sda2": "/dev/vda2", "/dev/sdb1": "/dev/vdb1",
                      "/dev/sda1": "/dev/vda1"}


def test_mixed_schemes_are_flagged_ambiguous() -> None:
    m = DeviceMapper("virtio-blk")
    m.rewrite("/dev/nvme0n1p1 /boot\n/dev/sda1 /data\n")
    assert m.ambiguous()
    m2 = DeviceMapper("virtio-blk")
    m2.rewrite("/dev/sda1 /boot\n/dev/sdb1 /data\n")
    assert not m2.ambiguous()


def test_unknown_bus_is_a_user_error() -> None:
    with pytest.raises(V2VError, match="ide"):
        DeviceMapper("ide")


def test_fstab_optical_drives_are_not_disks(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/etc/fstab", "/dev/hda1 / ext4 defaults 0 1\n"
            "/dev/hdc /media/cdrom0 udf,iso9660 user,noauto 0 0\n")
    m = DeviceMapper("virtio-blk")
    assert rewrite_device_names(g, m, ("/etc/fstab",)) == ["/etc/fstab"]
    assert g.read_text("/etc/fstab") == ("/dev/vda1 / ext4 defaults 0 1\n"
                                         "/dev/hdc /media/cdrom0 udf,iso9660 user,noauto 0 0\n")
    check_device_names(g, m, ("/etc/fstab",))
    g.write("/etc/fstab", "/dev/hda1 / ext4 defaults 0 1\n")
    with pytest.raises(V2VError, match="still names /dev/hda1"):
        check_device_names(g, m, ("/etc/fstab",))
