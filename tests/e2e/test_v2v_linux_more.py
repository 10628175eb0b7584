"""End to end: Linux guests as they really are (issue 14), each converted once and booted on virtio.

- debian13-btrfs: btrfs root in subvolumes with a snapper snapshot (must not count as a second
  OS), every filesystem named /dev/disk/by-id/… in fstab and on the kernel command line
  (rewritten to UUID or the guest cannot boot on virtio), `ens192` by ifupdown, no net.ifnames=0.
- debian12-nm-xfs, through `-i libvirtxml` (two source NICs): XFS root, a separate /usr the
  initramfs must mount, NetworkManager keyfiles for `ens192` (by name) and `ens224` (bound to its
  MAC, listed first by the source, so only the MAC rule pins it right), no net.ifnames=0.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from v2v_fixtures import Conversion, sha256
from v2v_helpers import V2V, vmware_domain_xml

pytestmark = [pytest.mark.slow]

# named by subvolume, not by the appliance's device name (sda or sdb, which the guest never saw)
SNAPSHOT_ROOT = re.compile(
    r"Ignoring the btrfs subvolume @snapshots/1/snapshot: a snapshot of the guest's root"
)
# recipes/debian12-nm-xfs.toml: the source lists ens224's NIC (bound by MAC) first.
NM_MACS = ("00:50:56:aa:00:02", "00:50:56:aa:00:01")


def _convert(source: Path, out: Path, name: str, *extra: str, stdin: str | None = None,
             input_args: tuple[str, ...] = ()) -> Conversion:
    before = sha256(source)
    res = subprocess.run([V2V, *(input_args or ("-i", "disk", str(source))),
                          "-on", name, "-o", "local", "-os", str(out), *extra],
                         input=stdin, capture_output=True, text=True, timeout=1800,
                         check=False)
    print(f"\nv2v {name}: rc={res.returncode}\n{res.stdout}\n{res.stderr[-3000:]}")
    return Conversion(source, out, list(extra), res.returncode, res.stdout, res.stderr, 0.0,
                      before, sha256(source))


@pytest.fixture(scope="module")
def converted_btrfs(debian13_btrfs: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Conversion:
    out = tmp_path_factory.mktemp("v2v-btrfs")
    return _convert(debian13_btrfs, out, "deb13btrfs")


@pytest.fixture(scope="module")
def converted_nm_xfs(debian12_nm_xfs: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> Conversion:
    out = tmp_path_factory.mktemp("v2v-nm-xfs")
    xml = out.parent / "deb12nmxfs-source.xml"
    xml.write_text(vmware_domain_xml("deb12nmxfs", debian12_nm_xfs, NM_MACS))
    return _convert(debian12_nm_xfs, out, "deb12nmxfs", input_args=("-i", "libvirtxml",
                                                                      str(xml)))


def _macs(c: Conversion, name: str) -> list[str]:
    root = etree.parse(str(c.outdir / f"{name}.xml")).getroot()
    return [str(m.get("address")) for m in root.findall("./devices/interface/mac")]


def _mac(c: Conversion, name: str) -> str:
    return _macs(c, name)[0]


# debian13-btrfs ----------------------------------------------------------------------------

def test_btrfs_converts_ignoring_the_snapshot(converted_btrfs: Conversion) -> None:
    c = converted_btrfs
    assert c.rc == 0, c.stderr[-2000:]
    assert c.sha_before == c.sha_after
    assert SNAPSHOT_ROOT.search(c.stdout + c.stderr), c.stdout[-2000:]
    assert "operating systems" not in c.stderr and "Traceback" not in c.stderr


def test_btrfs_by_id_names_rewritten(converted_btrfs: Conversion) -> None:
    """Every by-id name became UUID= (fstab and the kernel command line); the boot below is the
    proof that the result is right: virtio disks have no such by-id names."""
    out = converted_btrfs.stdout
    by_id = "/dev/disk/by-id/scsi-36000c29d4a5e1b7c2f3a8e9b0c1d2e3f"
    assert f"name {by_id}-part1 with UUID=" in out and "in /etc/fstab" in out
    line = next(ln for ln in out.splitlines() if f"{by_id}-part2 with UUID=" in ln)
    assert line.endswith("in /etc/fstab, /boot/grub/grub.cfg"), line
    assert "Pinned network interface names: ens192=" in out


@pytest.mark.boot
def test_btrfs_boots_on_virtio_with_ens192(converted_btrfs: Conversion, boot: Any) -> None:
    assert converted_btrfs.rc == 0
    res = boot(converted_btrfs.outdir / "deb13btrfs-sda", bus="virtio-blk",
               nic_model="virtio-net-pci", mac=_mac(converted_btrfs, "deb13btrfs"))
    assert res.outcome == "login", f"see {res.console_log}"
    assert res.up_interfaces.get("ens192") == "10.0.2.15", f"{res.markers}; {res.console_log}"


# debian12-nm-xfs ---------------------------------------------------------------------------

def test_nm_xfs_converts_pinning_both_nics(converted_nm_xfs: Conversion) -> None:
    c = converted_nm_xfs
    assert c.rc == 0, c.stderr[-2000:]
    assert c.sha_before == c.sha_after
    assert "Traceback" not in c.stderr and "pinned in order" not in c.stderr
    assert _macs(c, "deb12nmxfs") == list(NM_MACS)
    assert (f"Pinned network interface names: ens224={NM_MACS[0]}, ens192={NM_MACS[1]}"
            in c.stdout), c.stdout


@pytest.mark.boot
def test_nm_xfs_boots_on_virtio_with_both_nics_and_usr(converted_nm_xfs: Conversion,
                                                       boot: Any) -> None:
    """Both keyfiles apply (ens224 only if its MAC-bound name was pinned to the right NIC), / is
    XFS and /usr was mounted by the initramfs (the system is merged-/usr: no /usr, no init)."""
    c = converted_nm_xfs
    assert c.rc == 0
    res = boot(c.outdir / "deb12nmxfs-sda", bus="virtio-blk", nic_model="virtio-net-pci",
               mac=NM_MACS[0], extra_nics=[("virtio-net-pci", NM_MACS[1])])
    assert res.outcome == "login", f"see {res.console_log}"
    assert res.up_interfaces == {"ens224": "10.0.2.50", "ens192": "10.0.3.50"}, \
        f"{res.markers}; {res.console_log}"
    mounts = next(m for m in res.markers if m.startswith("PYV2V-MARKER mounts: "))
    assert mounts == "PYV2V-MARKER mounts: / xfs /dev/vda2 | /usr ext4 /dev/vda3", mounts
