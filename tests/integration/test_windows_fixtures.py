"""The phony Windows guests under real libguestfs: every good recipe inspects as the Windows it
claims (type, version, product, variant, arch, hostname, C: mapping, applications), and every bad
one shows its defect the way the reference sees it (ntfs-3g refusing a read-write mount of a
hibernated volume, BitLocker's filesystem type).

All images go into ONE appliance (one launch for the module; images are built once and cached).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pyv2v_harness.windows import RECIPES, ensure_windows_image, windows_recipe
from pyv2v_harness.windows.image import mbr_signature, windows_manifest

GOOD = ("win2022", "win10", "win2008r2", "win2022-uefi")
# The corrupt hive stays out: libguestfs' inspect_os then fails for the whole handle
# ("unhandled exception thrown: Hivex.Error"); tests/unit/test_windows_hive.py covers it.
NAMES = tuple(n for n in RECIPES if n != "win-corrupt-hive")


def _mount_rw(g: Any, dev: str) -> str:
    """'rw' when `dev` mounts read-write and takes a write, else ntfs-3g's complaint."""
    try:
        g.mount(dev, "/")
    except RuntimeError as e:
        return f"refused: {e}"
    try:
        g.touch("/pyv2v-write-test")
        return "rw"
    except RuntimeError as e:
        return f"read-only: {e}"
    finally:
        g.umount_all()


@pytest.fixture(scope="module")
def windows_guests() -> dict[str, dict[str, Any]]:
    """Recipe name -> what libguestfs saw on its disk (one appliance for all of them)."""
    import guestfs

    if os.geteuid() != 0:
        pytest.skip("the Windows fixtures are built with libguestfs as root")
    images = {n: ensure_windows_image(n) for n in NAMES}
    g: Any = guestfs.GuestFS(python_return_dict=True)
    facts: dict[str, dict[str, Any]] = {n: {"image": images[n]} for n in NAMES}
    try:
        for n in NAMES:  # readonly: a throw-away overlay takes our test writes
            g.add_drive_opts(str(images[n]), format="raw", readonly=True)
        g.launch()
        disks = dict(zip(g.list_devices(), NAMES, strict=True))
        for dev, n in disks.items():
            facts[n]["mbr"] = int.from_bytes(g.pread_device(dev, 4, 0x1B8), "little")
        filesystems = g.list_filesystems()
        for dev, vfs in filesystems.items():
            name = disks["/dev/" + dev.removeprefix("/dev/").rstrip("0123456789")]
            facts[name].setdefault("filesystems", {})[dev[len("/dev/sdX") :]] = vfs
        for root in g.inspect_os():
            f = facts[disks[root.rstrip("0123456789")]]
            f.update(
                root=root,
                type=g.inspect_get_type(root),
                distro=g.inspect_get_distro(root),
                product_name=g.inspect_get_product_name(root),
                variant=g.inspect_get_product_variant(root),
                major=g.inspect_get_major_version(root),
                minor=g.inspect_get_minor_version(root),
                arch=g.inspect_get_arch(root),
                hostname=g.inspect_get_hostname(root),
                systemroot=g.inspect_get_windows_systemroot(root),
                drives=g.inspect_get_drive_mappings(root),
            )
            g.mount_ro(root, "/")  # Windows applications come from the mounted SOFTWARE hive
            f["apps"] = {a["app2_display_name"]: a for a in g.inspect_list_applications2(root)}
            g.umount_all()
        for n in ("win2022", "win-hibernated", "win-dirty"):
            dev = next(d for d in g.list_devices() if disks[d] == n) + "1"
            facts[n]["mount"] = _mount_rw(g, dev)
        dev = next(d for d in g.list_devices() if disks[d] == "win-bitlocker")
        facts["win-bitlocker"]["blkid2"] = g.blkid(dev + "2")
        g.shutdown()
        print({n: {k: v for k, v in f.items() if k != "apps"} for n, f in facts.items()})
    finally:
        g.close()
    return facts


@pytest.mark.parametrize("name", GOOD)
def test_good_fixture_inspects_as_its_windows(
    windows_guests: dict[str, dict[str, Any]], name: str
) -> None:
    r = windows_recipe(name)
    f = windows_guests[name]
    assert (f.get("type"), f.get("distro")) == ("windows", "windows"), f
    assert (f["major"], f["minor"]) == (r.major, r.minor)
    assert f["product_name"] == r.product_name
    assert f["variant"] == r.installation_type
    assert f["arch"] == "x86_64"
    assert f["hostname"] == r.hostname
    assert f["systemroot"] == "/Windows"
    # MountedDevices names the GPT partition GUID, or the MBR disk signature + offset: each
    # BIOS recipe has its own signature, so libguestfs maps C: to this very disk among all
    assert f["drives"] == {"C": f["root"]}
    assert f["root"].endswith("2" if r.firmware == "uefi" else "1")
    assert {"VMware Tools", "7-Zip 22.01 (x64)"} <= set(f["apps"])
    assert f["apps"]["VMware Tools"]["app2_publisher"] == "VMware, Inc."
    if r.firmware == "uefi":
        assert f["filesystems"] == {"1": "vfat", "2": "ntfs"}
    else:
        assert f["filesystems"] == {"1": "ntfs"}
    manifest = windows_manifest(Path(f["image"]))
    assert manifest["product_name"] == r.product_name and manifest["bad"] is None
    if r.firmware == "bios":
        assert manifest["mbr_signature"] == f"{mbr_signature(r):08x}"
        assert f["mbr"] == mbr_signature(r)


def test_bios_recipes_have_their_own_disk_signature() -> None:
    sigs = [mbr_signature(r) for r in RECIPES.values() if r.partition_table == "dos"]
    assert len(sigs) == len(set(sigs)) and 0 not in sigs


def test_bad_fixtures_show_their_defect(windows_guests: dict[str, dict[str, Any]]) -> None:
    assert windows_guests["win2022"]["mount"] == "rw"
    # ntfs-3g sees hiberfil.sys's HIBR header and falls back to a read-only mount; inspection
    # (read-only) still finds the guest.
    assert windows_guests["win-hibernated"]["mount"].startswith("read-only"), windows_guests
    assert windows_guests["win-hibernated"].get("type") == "windows"
    # win-dirty: hibernated (Fast Startup) with the NTFS dirty flag in $MFT and $MFTMirr: a
    # consistent volume that inspection reads and ntfs-3g will not write.
    assert windows_guests["win-dirty"].get("type") == "windows", windows_guests
    assert windows_guests["win-dirty"]["mount"] != "rw", windows_guests
    # blkid names the BitLocker volume (header + FVE metadata blocks); no filesystem on it.
    assert windows_guests["win-bitlocker"]["blkid2"]["TYPE"] == "BitLocker"
    assert windows_guests["win-bitlocker"]["blkid2"]["USAGE"] == "crypto"
    assert set(windows_guests["win-bitlocker"]["filesystems"]) == {"1"}
    assert "type" not in windows_guests["win-bitlocker"]  # no Windows root is readable
