"""pytest plugin: bootable source-guest images (built once, cached outside the clone) and a
`boot` helper that keeps each boot's serial console log in the test's tmp_path.

    def test_x(debian12_physical, boot):
        result = boot(debian12_physical, bus="ide")
        assert result.outcome == "login", result.console_log

Images come from pyv2v_harness.fixtures.ensure_image (cache: $PYV2V_FIXTURE_CACHE, default
/var/cache/pyv2v/fixtures); building one needs root (loop devices, chroot).

`win2022_phony` is the phony Windows Server 2022 guest (pyv2v_harness.windows) with the
environment a real v2v needs to convert it (the cached fake virtio-win tree, no rhsrvany): a
real conversion in about a third of a Debian one (no initramfs rebuild), for tests whose subject
is not the Linux conversion (faults during the copy, the TUI flow, the fleet).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyv2v_harness import bootcheck
from pyv2v_harness.fixtures import ensure_image


def _image(name: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip(f"building the {name} fixture needs root (loop devices, chroot)")
    return ensure_image(name)


@pytest.fixture(scope="session")
def debian12_physical() -> Path:
    """Debian 12 as a physical/VMware machine: BIOS, MBR, /dev/sda1 /boot, /dev/sda2 /."""
    return _image("debian12-physical")


@pytest.fixture(scope="session")
def debian12_uefi() -> Path:
    """Debian 12 on UEFI: GPT, ESP, /boot, LVM vg0/root, UUIDs in fstab."""
    return _image("debian12-uefi")


@pytest.fixture(scope="session")
def debian12_netnames() -> Path:
    """Debian 12 with predictable NIC names: ens33 configured by systemd-networkd (static)."""
    return _image("debian12-netnames")


@pytest.fixture(scope="session")
def debian13_btrfs() -> Path:
    """Debian 13: btrfs root (@, @home, @snapshots + a snapshot), by-id root, ens192 (ifupdown)."""
    return _image("debian13-btrfs")


@pytest.fixture(scope="session")
def debian11_luks() -> Path:
    """Debian 11: LUKS2 root with a keyfile in the initramfs, plain /boot, ens160 (netplan)."""
    return _image("debian11-luks")


@pytest.fixture(scope="session")
def debian12_nm_xfs() -> Path:
    """Debian 12: XFS root, separate /usr, two NICs by NetworkManager keyfiles (one by MAC)."""
    return _image("debian12-nm-xfs")


@dataclass(frozen=True)
class WindowsGuest:
    image: Path
    env: dict[str, str]  # for v2v: VIRTIO_WIN, VIRT_TOOLS_DATA_DIR


@pytest.fixture(scope="session")
def win2022_phony(tmp_path_factory: pytest.TempPathFactory) -> WindowsGuest:
    """Phony Windows Server 2022 (BIOS, MBR, NTFS C: of ~2 MB data) + fake virtio-win."""
    from pyv2v_harness.windows import ensure_windows_image
    from pyv2v_harness.windows.virtio_win import ensure_virtio_win

    if os.geteuid() != 0:
        pytest.skip("the Windows fixtures are built with libguestfs as root")
    no_tools = tmp_path_factory.mktemp("no-virt-tools")
    return WindowsGuest(ensure_windows_image("win2022"),
                        {"VIRTIO_WIN": str(ensure_virtio_win("dir")),
                         "VIRT_TOOLS_DATA_DIR": str(no_tools)})


BootFn = Callable[..., bootcheck.BootResult]


@pytest.fixture
def boot(tmp_path: Path) -> BootFn:
    """`boot(image, **kwargs)` → BootResult; see pyv2v_harness.bootcheck.boot for the arguments.

    The default timeout is generous (600 s): under TCG on a busy 2-core machine a boot that
    takes ~45 s when idle has been seen to take over 3 minutes.  Outcomes other than a timeout
    are detected as soon as they show on the console, so this only delays a hung boot.
    """
    counter = itertools.count(1)

    def _boot(image: str | Path, **kwargs: Any) -> bootcheck.BootResult:
        kwargs.setdefault("console_log", tmp_path / f"console-{next(counter)}.log")
        kwargs.setdefault("timeout", 600.0)
        return bootcheck.boot(image, **kwargs)

    return _boot
