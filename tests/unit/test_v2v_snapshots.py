"""btrfs snapshot roots are dropped from inspection's roots (snapshots.drop_snapshot_roots),
against a fake libguestfs handle: Debian/snapper layout, openSUSE rollback, lone roots."""

from __future__ import annotations

from typing import Any

import pytest

from pyv2v.v2v.snapshots import drop_snapshot_roots


class FakeG:
    def __init__(self, default_id: int, subvols: dict[int, tuple[str, str]]) -> None:
        self.default_id = default_id
        self.subvols = subvols            # id -> (path, parent uuid or "-")
        self.mounted: list[str] = []

    def mount_options(self, opts: str, dev: str, mp: str) -> None:
        assert "ro" in opts.split(",") and "subvolid=5" in opts
        self.mounted.append(mp)

    def umount(self, mp: str) -> None:
        self.mounted.remove(mp)

    def btrfs_subvolume_get_default(self, fs: str) -> int:
        return self.default_id

    def btrfs_subvolume_list(self, fs: str) -> list[dict[str, Any]]:
        return [{"btrfssubvolume_id": i, "btrfssubvolume_path": p}
                for i, (p, _) in self.subvols.items()]

    def btrfs_subvolume_show(self, path: str) -> dict[str, str]:
        parent = next(par for p, par in self.subvols.values() if "/" + p == path)
        return {"Name": path, "Parent UUID": parent}


def test_snapper_snapshot_of_debian_root_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    g = FakeG(5, {256: ("@", "-"), 257: ("@home", "-"), 258: ("@snapshots", "-"),
                  259: ("@snapshots/1/snapshot", "1b2c")})
    roots = ["btrfsvol:/dev/sdb2/@", "btrfsvol:/dev/sdb2/@snapshots/1/snapshot"]
    assert drop_snapshot_roots(g, roots) == ["btrfsvol:/dev/sdb2/@"]
    assert g.mounted == []
    out = capsys.readouterr()
    said = out.out + out.err
    assert ("Ignoring the btrfs subvolume @snapshots/1/snapshot: a snapshot of the guest's "
            "root, not a separate operating system") in said
    assert "sdb" not in said  # the appliance's device name means nothing to the user


def test_default_subvolume_wins_after_a_rollback() -> None:
    g = FakeG(260, {256: ("@", "-"), 259: ("@/.snapshots/1/snapshot", "aa"),
                    260: ("@/.snapshots/2/snapshot", "aa")})
    roots = ["btrfsvol:/dev/sda2/@/.snapshots/1/snapshot",
             "btrfsvol:/dev/sda2/@/.snapshots/2/snapshot"]
    assert drop_snapshot_roots(g, roots) == ["btrfsvol:/dev/sda2/@/.snapshots/2/snapshot"]


def test_separate_systems_kept() -> None:
    g = FakeG(5, {256: ("@", "-"), 257: ("@other", "-")})
    roots = ["/dev/sda1", "btrfsvol:/dev/sda2/@", "btrfsvol:/dev/sda2/@other"]
    assert drop_snapshot_roots(g, roots) == roots
    assert drop_snapshot_roots(object(), ["/dev/sda1", "btrfsvol:/dev/sda2/@"]) == [
        "/dev/sda1", "btrfsvol:/dev/sda2/@"]
