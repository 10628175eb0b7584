"""The p2v boot media, proved in a VM (issue 15): p2v-make-media's cached live system booted by
qemu as the "physical machine", its disk the cached debian12-physical image (read-only snapshot
overlay), the host's loopback conversion server (our v2v behind sshd) reachable as 10.0.2.2.

- ISO, BIOS, kernel mode (p2v.server on the kernel command line, identity key and pinned host
  key baked into the media), with a static ip= on the command line: the machine's disk (the
  phony Windows Server 2022 guest: 256 MiB and no initramfs rebuild, as the subject here is the
  media, not the Linux conversion) is converted on the host and the VM powers itself off.
- The same under UEFI (OVMF) with the debian12-uefi disk (GPT, LVM) and DHCP; the converted
  guest boots under OVMF on virtio with its network up.
- PXE kernel+initrd (BIOS) and the ISO under UEFI (OVMF) with an unreachable server: p2v
  starts, the failure is on the console and p2v.fail (poweroff) powers the VM off; the PXE
  boot's vconsole.keymap=de is read back from the console keymap (German z, default y).
- PXE without a server: the console UI's connection screen on the serial console.
- Two builds from the same inputs are byte-identical.
The live system is built once and cached by its inputs (/var/cache/pyv2v/media).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from guest_fixtures import WindowsGuest
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
# The PXE run also asks for a German keyboard; the UEFI run keeps the default (US) layout.
KEYMAP_DE = "vconsole.keymap=de"


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
            append=f"{cmdline} {UNREACHABLE} {KEYMAP_DE}",
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
    # the keyboard layout took effect (p2v-status reads the console's keymap back before p2v
    # starts): the key right of T types z on a German layout, y on the default
    key = "y" if uefi else "z"
    assert re.search(rf"p2v media: keyboard: keycode 21 types \+?{key}\b", vm.text), vm.console_log


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
    name: str
    uefi: bool
    sha_before: str
    sha_after: str
    iso_mode: int


# The BIOS run also proves a static network from the kernel command line (slirp's network, an
# address its DHCP server would not hand out); the UEFI run keeps DHCP, so the assertions below
# are seen both ways.
STATIC_IP = "ip=10.0.2.20::10.0.2.2:255.255.255.0:p2v::off"


def kernel_mode_run(
    base: rootfs.Base, source: Path, work: Path, *, name: str, uefi: bool, append: str = "",
    env: dict[str, str] | None = None,
) -> Iterator[KernelModeRun]:
    """Boot the ISO (BIOS or OVMF) in kernel mode with `source` as the machine's disk, against
    a loopback conversion server on the host; yields when the VM has stopped."""
    out = work / "out"
    out.mkdir()
    before = sha256(source)
    srv = loopback.start_conversion_server(work / "bin", env=env)
    try:
        media = assemble.make(
            base,
            work / "media",
            identity=srv.user_key,
            serial=True,
            pxe=False,
            settings=[
                ("p2v.hostkey", srv.fingerprint),
                ("p2v.name", name),
                ("p2v.o", "local"),
                ("p2v.os", str(out)),
                ("p2v.memory", "1G"),
            ],
            append=f"p2v.server=10.0.2.2 p2v.port={srv.port} {append}".strip(),
        )
        assert media.iso is not None
        vm = MediaVM(
            iso=media.iso, uefi=uefi, disks=[source], console_log=work / "console.log"
        ).run(watch=["Testing the connection", RUNNING, DONE], timeout=1800)
        print(
            f"\nkernel-mode VM ({'UEFI' if uefi else 'BIOS'}): powered off {vm.powered_off} "
            f"after {vm.seconds} s; seen {vm.seen}; console {vm.console_log}"
        )
        yield KernelModeRun(
            vm, out, name, uefi, before, sha256(source), media.iso.stat().st_mode & 0o777
        )
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def kernel_mode(
    p2v_media_base: rootfs.Base, win2022_phony: WindowsGuest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KernelModeRun]:
    yield from kernel_mode_run(
        p2v_media_base,
        win2022_phony.image,
        tmp_path_factory.mktemp("media-kernel"),
        name="p2vmedia",
        uefi=False,
        append=STATIC_IP,
        env=win2022_phony.env,
    )


@pytest.fixture(scope="module")
def kernel_mode_uefi(
    p2v_media_base: rootfs.Base, debian12_uefi: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KernelModeRun]:
    yield from kernel_mode_run(
        p2v_media_base,
        debian12_uefi,
        tmp_path_factory.mktemp("media-kernel-uefi"),
        name="p2vuefi",
        uefi=True,
    )


# Each firmware's tests run on one xdist worker, tied to its module fixture by name
# (getfixturevalue below ties nothing): otherwise a worker boots and converts its own copy.
@pytest.fixture(params=[
    pytest.param("bios", marks=pytest.mark.xdist_group("test_p2v_media.py:kernel_mode")),
    pytest.param("uefi", marks=pytest.mark.xdist_group("test_p2v_media.py:kernel_mode_uefi")),
])
def run(request: pytest.FixtureRequest) -> KernelModeRun:
    fixture = "kernel_mode" if request.param == "bios" else "kernel_mode_uefi"
    result: KernelModeRun = request.getfixturevalue(fixture)
    return result


def test_iso_kernel_mode_converts_and_powers_off(run: KernelModeRun) -> None:
    vm = run.vm
    assert vm.powered_off and vm.rc == 0, f"VM did not power off; see {vm.console_log}"
    assert RUNNING in vm.seen and DONE in vm.seen, f"see {vm.console_log}"
    assert "matches the pinned SHA256:" in vm.text  # the baked host key was checked
    assert vm.seen[RUNNING] < vm.seen[DONE]
    assert (run.outdir / f"{run.name}-sda").exists()
    # the media hold a private key: root only
    assert run.iso_mode == 0o600


def test_static_ip_from_the_kernel_command_line(kernel_mode: KernelModeRun) -> None:
    """ip= (static: no DHCP lease, slirp's gateway) took effect: the console shows the address
    and a static default route (and p2v reached the server through them)."""
    text = kernel_mode.vm.text
    assert re.search(r"p2v media: address \S+ +UP +10\.0\.2\.20/24", text), (
        kernel_mode.vm.console_log
    )
    assert re.search(r"p2v media: route default via 10\.0\.2\.2 dev \S+ proto static", text)


def test_dhcp_without_ip(kernel_mode_uefi: KernelModeRun) -> None:
    text = kernel_mode_uefi.vm.text
    assert re.search(r"p2v media: address \S+ +UP +10\.0\.2\.15/24", text), (
        kernel_mode_uefi.vm.console_log
    )
    assert re.search(r"p2v media: route default via 10\.0\.2\.2 dev \S+ proto dhcp", text)


def test_source_disk_never_written(run: KernelModeRun) -> None:
    assert run.sha_before == run.sha_after


def test_converted_machine_boots_on_virtio_with_network(
    kernel_mode_uefi: KernelModeRun, tmp_path: Path
) -> None:
    """The UEFI run's output (the debian12-uefi guest, through the ISO's p2v) is booted."""
    run = kernel_mode_uefi
    disk, xml = run.outdir / f"{run.name}-sda", run.outdir / f"{run.name}.xml"
    uefi = run.uefi
    res = bootcheck.boot(
        disk,
        bus="virtio-blk",
        firmware="uefi" if uefi else "bios",
        nic_model="virtio-net-pci",
        mac=demo.first_mac(xml),
        timeout=600,
        console_log=tmp_path / "console.log",
    )
    print(f"\nconverted guest ({'UEFI' if uefi else 'BIOS'}) boot: {res.seconds} s")
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
