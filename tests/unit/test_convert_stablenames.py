"""Source-only device names (by-id, by-path) → UUID=, or a refusal (stablenames.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.linux import grub
from pyv2v.v2v.convert.linux.stablenames import check, rewrite
from pyv2v.v2v.types import Inspect

ID = "/dev/disk/by-id/nvme-Samsung_SSD_970_S4EWNX0N123456"
PATH = "/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:1:0"
U2, U3 = "aaaaaaaa-0000-4000-8000-000000000002", "aaaaaaaa-0000-4000-8000-000000000003"


def inspect(mounts: tuple[tuple[str, str], ...] = (("/", "/dev/sda2"),)) -> Inspect:
    return Inspect(root="/dev/sda2", type="linux", distro="rhel", major=8, minor=9,
                   arch="x86_64", product_name="RHEL 8", package_format="rpm",
                   package_management="dnf", mountpoints=mounts)


def guest(tmp_path: Path) -> FakeGuest:
    return FakeGuest(tmp_path, uuids={"/dev/sda2": U2, "/dev/sda3": U3})


def test_kernel_command_line_root_maps_to_the_inspected_root(tmp_path: Path) -> None:
    g = guest(tmp_path)
    g.write("/boot/loader/entries/x.conf", f"linux /vmlinuz\noptions root={ID}-part2 ro\n")
    g.write("/boot/grub2/grubenv", grub.format_grubenv(
        {"kernelopts": f"root={ID}-part2 ro resume={ID}-part3"}))
    files = ["/boot/loader/entries/x.conf", "/boot/grub2/grubenv"]
    assert rewrite(g, inspect(), files) == {f"{ID}-part2": f"UUID={U2}",
                                            f"{ID}-part3": f"UUID={U3}"}   # same disk: part3
    assert f"options root=UUID={U2} ro" in g.read_text(files[0])
    env = g.read_text(files[1])
    assert len(env) == 1024 and f"kernelopts=root=UUID={U2} ro resume=UUID={U3}\n" in env
    check(g, files)


def test_fstab_by_mount_point_and_comments_kept(tmp_path: Path) -> None:
    g = guest(tmp_path)
    g.write("/etc/fstab", f"# was {PATH}-part9\n{PATH}-part3 /home xfs defaults 0 0\n"
            "LABEL=data /data ext4 defaults 0 0\n")
    rewrite(g, inspect((("/", "/dev/sda2"), ("/home", "/dev/sda3"))), ["/etc/fstab"])
    assert g.read_text("/etc/fstab") == (f"# was {PATH}-part9\nUUID={U3} /home xfs defaults 0 0\n"
                                         "LABEL=data /data ext4 defaults 0 0\n")
    check(g, ["/etc/fstab"])


def test_unresolvable_name_refused_before_any_output(tmp_path: Path) -> None:
    g = guest(tmp_path)
    g.write("/etc/crypttab", f"cryptdata {PATH}-part7 none luks\n")
    g.write("/etc/fstab", f"{ID}-part2 / ext4 defaults 0 1\n")
    rewrite(g, inspect(), ["/etc/fstab", "/etc/crypttab"])
    assert g.read_text("/etc/fstab").startswith(f"UUID={U2} /")
    with pytest.raises(V2VError, match=rf"{PATH}-part7 \(in /etc/crypttab\)"):
        check(g, ["/etc/fstab", "/etc/crypttab"])


def test_a_device_without_uuid_stays_and_is_refused(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path, uuids={})
    g.write("/etc/default/grub", f'GRUB_CMDLINE_LINUX="root={ID}-part2"\n')
    assert rewrite(g, inspect(), ["/etc/default/grub"]) == {}
    with pytest.raises(V2VError, match="could not be mapped to a filesystem UUID"):
        check(g, ["/etc/default/grub"])
