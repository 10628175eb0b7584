"""The p2v boot media, proved in a VM (issue 15): p2v-make-media's cached live system booted by
qemu as the "physical machine", its disk the cached debian12-physical image (read-only snapshot
overlay), the host's loopback conversion server (our v2v behind sshd) reachable as 10.0.2.2.

- ISO, BIOS, kernel mode (p2v.server on the kernel command line, identity key and pinned host
  key baked into the media): the disk is converted on the host, the VM powers itself off, and
  the converted guest boots on virtio with its network up.
- PXE kernel+initrd (BIOS) and the ISO under UEFI (OVMF) with an unreachable server: p2v
  starts, the failure is on the console and p2v.fail (poweroff) powers the VM off.
- PXE without a server: the console UI's connection screen on the serial console.
- Two builds from the same inputs are byte-identical.
The live system is built once and cached by its inputs (/var/cache/pyv2v/media).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from v2v_fixtures import sha256

from pyv2v.media import assemble, rootfs
from pyv2v_harness import bootcheck, demo, loopback
from pyv2v_harness.mediavm import MediaVM, VMResult

pytestmark = [pytest.mark.slow, pytest.mark.boot]

RUNNING = "Doing conversion"
DONE = "Conversion finished successfully"


@pytest.fixture(scope="module")
def p2v_media_base() -> rootfs.Base:
    base = rootfs.ensure_base()
    print(
        f"\nmedia base {base.dir}: initrd {base.initrd.stat().st_size >> 20} MiB, "
        f"built in {base.manifest['build_seconds']} s"
    )
    return base


UNREACHABLE = "p2v.server=10.0.2.2 p2v.port=1 p2v.fail=poweroff"


def unreachable_boot(base: rootfs.Base, tmp_path: Path, *, uefi: bool) -> VMResult:
    """Boot the PXE set (BIOS) or the ISO (UEFI) with a server nobody listens on."""
    key = tmp_path / "id"
    loopback.keygen(key)
    media = assemble.make(
        base,
        tmp_path / "media",
        identity=key,
        iso=uefi,
        pxe=not uefi,
        settings=[("p2v.hostkey", "SHA256:" + "A" * 43)],
        serial=True,
        append=UNREACHABLE if uefi else "",
    )
    blank = tmp_path / "blank.img"  # a disk to convert, so p2v gets as far as connecting
    with open(blank, "wb") as f:
        f.truncate(64 << 20)
    if uefi:
        assert media.iso is not None and media.iso.stat().st_mode & 0o777 == 0o600
        vm = MediaVM(iso=media.iso, uefi=True, disks=[blank])
    else:
        assert media.pxe is not None
        cmdline = (media.pxe / "cmdline.txt").read_text().strip()
        assert "console=ttyS0" in cmdline
        vm = MediaVM(
            disks=[blank],
            kernel=media.pxe / "vmlinuz",
            initrd=media.pxe / "initrd.img",
            append=f"{cmdline} {UNREACHABLE}",
        )
    vm.console_log = tmp_path / "console.log"
    res = vm.run(watch=["Testing the connection"], timeout=600)
    print(
        f"\n{'UEFI ISO' if uefi else 'PXE'} unreachable-server VM: {res.seconds} s, seen {res.seen}"
    )
    return res


@pytest.mark.parametrize("uefi", [False, True], ids=["pxe-bios", "iso-uefi"])
def test_unreachable_server_runs_p2v_fail(
    p2v_media_base: rootfs.Base, tmp_path: Path, uefi: bool
) -> None:
    vm = unreachable_boot(p2v_media_base, tmp_path, uefi=uefi)
    assert vm.powered_off and vm.rc == 0, f"p2v.fail did not power off; see {vm.console_log}"
    assert "Testing the connection to root@10.0.2.2:1" in vm.text, vm.console_log
    assert "p2v: error: cannot reach conversion server 10.0.2.2:1" in vm.text
    assert "running p2v.fail: poweroff" in vm.text and RUNNING not in vm.text


def test_pxe_without_server_shows_the_console_ui(
    p2v_media_base: rootfs.Base, tmp_path: Path
) -> None:
    media = assemble.make(
        p2v_media_base, tmp_path / "media", identity=None, settings=[], serial=True, iso=False
    )
    assert media.pxe is not None
    cmdline = (media.pxe / "cmdline.txt").read_text().strip()
    vm = MediaVM(
        kernel=media.pxe / "vmlinuz",
        initrd=media.pxe / "initrd.img",
        append=cmdline,
        console_log=tmp_path / "console.log",
    ).run(until="Conversion server", timeout=600)
    print(f"\nPXE console-UI VM: {vm.seconds} s, seen {vm.seen}")
    assert "Conversion server" in vm.seen, f"no console UI on ttyS0; see {vm.console_log}"
    assert "connect to the conversion server" in vm.text
    assert "login:" not in vm.text


@dataclass
class KernelModeRun:
    vm: VMResult
    outdir: Path
    sha_before: str
    sha_after: str
    iso_mode: int


@pytest.fixture(scope="module")
def kernel_mode(
    p2v_media_base: rootfs.Base, debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KernelModeRun]:
    work = tmp_path_factory.mktemp("media-kernel")
    out = work / "out"
    out.mkdir()
    before = sha256(debian12_physical)
    srv = loopback.start_conversion_server(work / "bin")
    try:
        media = assemble.make(
            p2v_media_base,
            work / "media",
            identity=srv.user_key,
            serial=True,
            pxe=False,
            settings=[
                ("p2v.hostkey", srv.fingerprint),
                ("p2v.name", "p2vmedia"),
                ("p2v.o", "local"),
                ("p2v.os", str(out)),
                ("p2v.memory", "1G"),
            ],
            append=f"p2v.server=10.0.2.2 p2v.port={srv.port}",
        )
        assert media.iso is not None
        vm = MediaVM(
            iso=media.iso, disks=[debian12_physical], console_log=work / "console.log"
        ).run(
            watch=[
                "Testing the connection",
                RUNNING,
                DONE,
            ],
            timeout=1800,
        )
        print(
            f"\nkernel-mode VM: powered off {vm.powered_off} after {vm.seconds} s; "
            f"seen {vm.seen}; console {vm.console_log}"
        )
        yield KernelModeRun(
            vm, out, before, sha256(debian12_physical), media.iso.stat().st_mode & 0o777
        )
    finally:
        srv.stop()


def test_iso_kernel_mode_converts_and_powers_off(kernel_mode: KernelModeRun) -> None:
    vm = kernel_mode.vm
    assert vm.powered_off and vm.rc == 0, f"VM did not power off; see {vm.console_log}"
    assert RUNNING in vm.seen and DONE in vm.seen, f"see {vm.console_log}"
    assert "matches the pinned SHA256:" in vm.text  # the baked host key was checked
    assert vm.seen[RUNNING] < vm.seen[DONE]
    assert (kernel_mode.outdir / "p2vmedia-sda").exists()
    # the media hold a private key: root only
    assert kernel_mode.iso_mode == 0o600


def test_source_disk_never_written(kernel_mode: KernelModeRun) -> None:
    assert kernel_mode.sha_before == kernel_mode.sha_after


def test_converted_machine_boots_on_virtio_with_network(
    kernel_mode: KernelModeRun, tmp_path: Path
) -> None:
    disk, xml = kernel_mode.outdir / "p2vmedia-sda", kernel_mode.outdir / "p2vmedia.xml"
    res = bootcheck.boot(
        disk,
        bus="virtio-blk",
        nic_model="virtio-net-pci",
        mac=demo.first_mac(xml),
        timeout=600,
        console_log=tmp_path / "console.log",
    )
    assert res.outcome == "login", f"see {res.console_log}"
    assert res.net_up, res.markers


def test_same_inputs_give_identical_media(p2v_media_base: rootfs.Base, tmp_path: Path) -> None:
    """Two builds from the same base and settings, a few seconds apart: byte-identical ISO and
    PXE set (dates come from the recipe's epoch, the EFI image's FAT serial is fixed)."""
    built = []
    for n in (1, 2):
        media = assemble.make(
            p2v_media_base, tmp_path / f"m{n}", identity=None, settings=[], serial=True
        )
        assert media.iso is not None and media.pxe is not None
        built.append(
            [sha256(media.iso)] + [sha256(f) for f in sorted(media.pxe.iterdir()) if f.is_file()]
        )
        time.sleep(1.5)  # a clock-derived field would differ between the builds
    assert built[0] == built[1]
