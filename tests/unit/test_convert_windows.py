"""Unit tests of the Windows converter's pure logic and its refusals (FakeGuest, real hives)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from pyv2v import log
from pyv2v.errors import V2VError
from pyv2v.v2v.convert import converter_for
from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.windows import drivers, firstboot, tasks
from pyv2v.v2v.convert.windows.facts import WindowsInfo
from pyv2v.v2v.convert.windows.hygiene import disable_foreign_services
from pyv2v.v2v.convert.windows.registry import REG_DWORD, REG_MULTI_SZ, Hive
from pyv2v.v2v.convert.windows.virtio_win import VirtioWin, matches_guest
from pyv2v.v2v.outputs.domain_xml import build_domain
from pyv2v.v2v.types import ConvertOptions, StaticIp, TargetNicPlan

from .test_convert_windows_golden import (
    CONFIG,
    VIRTIO_OSES,
    build_tree,
    domain_for,
    fake_virtio_win,
)

W2022 = WindowsInfo(
    "Windows Server 2022 Standard",
    10,
    0,
    20348,
    "ServerStandard",
    "Server",
    "x86_64",
    "/Windows",
    "ControlSet001",
)
W10 = replace(W2022, product_name="Windows 10 Pro", build=19045, installation_type="Client")
W11 = replace(W10, build=22631)
W2K8R2 = replace(W2022, major=6, minor=1, build=7601)


@pytest.mark.parametrize(
    "path,info,ok",
    [
        ("viostor/2k22/amd64/viostor.sys", W2022, True),
        ("viostor/2k19/amd64/viostor.sys", W2022, False),
        ("viostor/w10/amd64/viostor.sys", W2022, False),
        ("viostor/2k22/x86/viostor.sys", W2022, False),
        ("amd64/2k22/viostor.sys", W2022, True),  # the ISO's second layout
        ("viostor/w10/amd64/viostor.sys", W10, True),
        ("viostor/w11/amd64/viostor.sys", W10, False),
        ("viostor/w11/amd64/viostor.sys", W11, True),
        ("VIOSTOR/2K8R2/AMD64/viostor.sys", W2K8R2, True),
        ("viostor/w7/amd64/viostor.sys", W2K8R2, False),
        ("viostor/2k22/amd64", W2022, False),  # the element must be a directory
    ],
)
def test_driver_directories_match_version_variant_arch(
    path: str, info: WindowsInfo, ok: bool
) -> None:
    assert matches_guest(path, info) is ok


def test_dir_hint_names_what_to_install() -> None:
    assert drivers.os_dir_hint(W2022) == "viostor/2k22/amd64"
    assert drivers.os_dir_hint(W2K8R2) == "viostor/2k8R2/amd64"
    assert drivers.os_dir_hint(W11) == "viostor/w11/amd64"


def test_uninstall_commands_are_unattended() -> None:
    assert (
        tasks.uninstall_command("MsiExec.exe /I{ABC-1}", False)
        == "MsiExec.exe /X{ABC-1} /qn /norestart REBOOT=ReallySuppress"
    )
    assert (
        tasks.uninstall_command('"C:\\x\\uninst.exe" /quiet', True) == '"C:\\x\\uninst.exe" /quiet'
    )


def test_group_policy_ini_merging() -> None:
    ini = "[Startup]\n0CmdLine=a.bat\n0Parameters=\n[Shutdown]\n0CmdLine=b.bat\n"
    out = firstboot.add_startup_script(ini, "C:\\fb.bat")
    assert "1CmdLine=C:\\fb.bat\n1Parameters=\n[Shutdown]" in out
    assert firstboot.add_startup_script(out, "C:\\fb.bat") == out
    gpt = firstboot.bump_gpt("[General]\nVersion=3\ngPCMachineExtensionNames=[{X}{Y}]\n")
    assert "Version=4" in gpt and firstboot.SCRIPTS_CSE in gpt


def test_network_plan_mac_option_wins() -> None:
    src = [StaticIp("192.168.1.5", 24, "192.168.1.1")]
    a, b = (
        TargetNicPlan("52:54:00:00:00:01", None, "n"),
        TargetNicPlan("52:54:00:00:00:02", None, "n"),
    )
    mine = StaticIp("10.1.1.1", 16)
    assert tasks.network_plan((replace(a, static=mine), b), src) == [
        ("52:54:00:00:00:01", mine),
        ("52:54:00:00:00:02", src[0]),
    ]
    script = tasks.network_script([("52:54:00:00:00:01", mine)])
    assert "EnableStatic(@('10.1.1.1'), @('255.255.0.0'))" in script


def _tree(tmp_path: Path, name: str = "win2022") -> tuple[FakeGuest, object]:
    inspect = build_tree(name, tmp_path / "root")
    return FakeGuest(tmp_path / "root"), inspect


def test_hive_changes_are_logged_with_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guest, _ = _tree(tmp_path)
    h = Hive.open(guest, f"{CONFIG}/SYSTEM", "HKLM\\SYSTEM")
    try:
        h.set(("ControlSet001", "Services", "vmci"), "Start", REG_DWORD, 4)
        h.set(("ControlSet001", "Services", "vmci"), "Start", REG_DWORD, 4)  # no change
        h.set(("ControlSet001", "Services", "new"), "X", REG_MULTI_SZ, ["a", "b"])
        assert [str(c) for c in h.changes] == [
            "HKLM\\SYSTEM\\ControlSet001\\Services\\vmci [Start]: dword:0x0 -> dword:0x4",
            "HKLM\\SYSTEM\\ControlSet001\\Services\\new [(default)]: (no key) -> (key created)",
            "HKLM\\SYSTEM\\ControlSet001\\Services\\new [X]: (none) -> multi_sz:'a','b'",
        ]
        log.configure(verbose=True)
        try:
            h.commit()
        finally:
            log.configure(verbose=False)
    finally:
        h.close()
    assert (
        "registry: HKLM\\SYSTEM\\ControlSet001\\Services\\vmci [Start]" in capsys.readouterr().err
    )
    h2 = Hive.open(guest, f"{CONFIG}/SYSTEM", "HKLM\\SYSTEM")
    assert h2.get_int(("ControlSet001", "Services", "vmci"), "Start") == 4  # written back
    h2.close()


def test_hygiene_drops_disabled_filters(tmp_path: Path) -> None:
    guest, _ = _tree(tmp_path)
    h = Hive.open(guest, f"{CONFIG}/SYSTEM", "HKLM\\SYSTEM")
    cls = ("ControlSet001", "Control", "Class", "{4d36e96f-e325-11ce-bfc1-08002be10318}")
    h.set(cls, "UpperFilters", REG_MULTI_SZ, ["vmmouse", "mouclass"])
    h.set(("ControlSet001", "Services", "vmmouse"), "Start", REG_DWORD, 3)
    disabled = disable_foreign_services(h, W2022)
    assert "vmmouse" in disabled and "vsepflt" in disabled and "pvscsi" in disabled
    assert h.get(cls, "UpperFilters") == ["mouclass"]
    h.close()


# Refusals and the fallback --------------------------------------------------------------------


def convert(guest: FakeGuest, inspect: object, **kw: object) -> object:
    return converter_for(inspect).convert(
        guest,
        inspect,  # type: ignore[arg-type]
        ConvertOptions(disk_count=1, **kw),
    )  # type: ignore[arg-type]


@pytest.fixture
def no_virtio_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIRTIO_WIN", raising=False)
    monkeypatch.delenv("VIRTIO_WIN_DIR", raising=False)
    monkeypatch.setattr("pyv2v.v2v.convert.windows.virtio_win.DEFAULT_DIR", str(tmp_path / "n"))
    monkeypatch.setattr("pyv2v.v2v.convert.windows.virtio_win.DEFAULT_ISO", str(tmp_path / "n.iso"))
    monkeypatch.setenv("VIRT_TOOLS_DATA_DIR", str(tmp_path / "no-tools"))


@pytest.mark.usefixtures("no_virtio_win")
def test_hibernated_guest_refused_with_advice(tmp_path: Path) -> None:
    guest, inspect = _tree(tmp_path)
    guest.write("/hiberfil.sys", b"HIBR" + bytes(60))
    before = guest.read(f"{CONFIG}/SYSTEM")
    with pytest.raises(V2VError, match="Windows Hibernation or Fast Restart .* disable this"):
        convert(guest, inspect)
    assert guest.read(f"{CONFIG}/SYSTEM") == before


@pytest.mark.usefixtures("no_virtio_win")
def test_corrupt_hive_refused_in_one_line(tmp_path: Path) -> None:
    guest, inspect = _tree(tmp_path)
    data = bytearray(guest.read(f"{CONFIG}/SOFTWARE"))
    data[0x1000:0x1040] = b"\xde\xad\xbe\xef" * 16
    guest.write(f"{CONFIG}/SOFTWARE", bytes(data))
    with pytest.raises(V2VError, match="SOFTWARE .* is corrupt") as e:
        convert(guest, inspect)
    assert "\n" not in str(e.value)


@pytest.mark.usefixtures("no_virtio_win")
def test_read_only_root_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guest, inspect = _tree(tmp_path)

    def ro(path: str, data: bytes | str) -> None:
        raise V2VError(f"writing {path}: Read-only file system")

    monkeypatch.setattr(guest, "write", ro)
    with pytest.raises(V2VError, match="mounted read-only"):
        convert(guest, inspect)


def test_virtio_win_without_this_version_refused(
    tmp_path: Path, no_virtio_win: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    guest, inspect = _tree(tmp_path)
    fake_virtio_win(tmp_path / "vw", tuple(o for o in VIRTIO_OSES if o != "2k22"))
    monkeypatch.setenv("VIRTIO_WIN", str(tmp_path / "vw"))
    with pytest.raises(
        V2VError,
        match=r"has no virtio drivers for Windows Server 2022 .*"
        r"viostor/2k22/amd64",
    ):
        convert(guest, inspect)
    monkeypatch.setenv("VIRTIO_WIN", str(tmp_path / "missing"))
    with pytest.raises(V2VError, match="VIRTIO_WIN=.*missing: no such directory or ISO"):
        convert(guest, inspect)


@pytest.mark.usefixtures("no_virtio_win")
def test_no_virtio_win_falls_back_to_ide_and_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guest, inspect = _tree(tmp_path)
    caps = convert(guest, inspect)
    assert (caps.block_bus, caps.machine, caps.target_devs) == ("ide", "pc", ("hda",))  # type: ignore[attr-defined]
    assert caps.net_bus == "e1000"  # type: ignore[attr-defined]
    warnings = [x for x in capsys.readouterr().err.splitlines() if "warning:" in x]
    assert any("IDE bus" in w and "viostor/2k22/amd64/viostor.sys" in w for w in warnings)
    xml = domain_for((caps, inspect), tmp_path)  # type: ignore[arg-type]
    assert 'bus="ide"' in xml and 'dev="hda"' in xml and 'machine="pc"' in xml


def test_virtio_win_iso_read_without_mounting(
    tmp_path: Path, no_virtio_win: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_virtio_win(tmp_path / "vw", ("2k22", "w11"))
    iso = tmp_path / "virtio-win.iso"
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-J", "-R", "-o", str(iso), str(tmp_path / "vw")],
        check=True,
        capture_output=True,
    )
    vw = VirtioWin.open(str(iso))
    try:
        assert vw.iso and "viostor/2k22/amd64/viostor.sys" in vw.files
        local = vw.fetch("viostor/2k22/amd64/viostor.sys")
        assert Path(local).read_text() == "fake viostor/2k22/amd64/viostor.sys\n"
    finally:
        vw.close()
    assert not os.path.exists(local)
    # A Windows 11 guest converted from the ISO: w11 drivers, TPM in the domain.
    guest, inspect = _tree(tmp_path, "win10")
    h = Hive.open(guest, f"{CONFIG}/SOFTWARE", "HKLM\\SOFTWARE")
    h.set(("Microsoft", "Windows NT", "CurrentVersion"), "CurrentBuildNumber", 1, "22631")
    h.commit()
    h.close()
    monkeypatch.setenv("VIRTIO_WIN", str(iso))
    caps = convert(guest, inspect, block_bus="virtio-blk")
    assert caps.block_bus == "virtio-blk" and caps.tpm  # type: ignore[attr-defined]
    assert (
        guest.read("/Windows/System32/drivers/viostor.sys")
        == b"fake viostor/w11/amd64/viostor.sys\n"
    )
    assert '<tpm model="tpm-crb">' in domain_for((caps, inspect), tmp_path)  # type: ignore[arg-type]
    assert build_domain  # the same builder -o local and -o libvirt use


def test_every_output_mode_gets_the_windows_caps() -> None:
    from pyv2v.v2v.outputs.kubevirt import manifest
    from pyv2v.v2v.outputs.qemu import qemu_argv
    from pyv2v.v2v.types import GuestCaps, Source, SourceDisk, TargetDisk, TargetMeta

    caps = GuestCaps(
        block_bus="sata",
        net_bus="e1000",
        video="vga",
        machine="q35",
        arch="x86_64",
        firmware="uefi",
        target_devs=("sda",),
        hyperv=True,
        clock="localtime",
        tpm=True,
    )
    src = Source(
        name="w",
        hypervisor="vmware",
        memory=2 * 1024**3,
        vcpus=2,
        disks=(SourceDisk(0, "/in/w.img", "raw"),),
    )
    meta = TargetMeta(
        name="w",
        source=src,
        inspect=None,
        caps=caps,
        disks=(TargetDisk("/out/w-sda", "raw", "sda", 1 << 30),),
        nics=(TargetNicPlan("52:54:00:00:00:09", None, "default"),),
    )
    argv = " ".join(qemu_argv(meta, ["-accel", "tcg"]))
    assert "-rtc base=localtime" in argv and "ide-hd,drive=drive0,bus=ide.0" in argv
    assert "e1000,netdev=net0" in argv
    vm = manifest(meta, ["/out/w-sda"])
    dom = vm["spec"]["template"]["spec"]["domain"]
    assert dom["features"]["hyperv"]["relaxed"] == {} and "tpm" in dom["devices"]
    assert dom["devices"]["disks"][0]["disk"]["bus"] == "sata"
    xml = build_domain(meta)
    assert '<tpm model="tpm-crb">' in xml and 'bus="sata"' in xml and "hypervclock" in xml


def test_bitlocker_found_by_type_or_signature() -> None:
    from pyv2v.v2v.convert.windows.facts import bitlocker_devices

    class G:  # as libguestfs: list_filesystems would omit sdb1 (blkid USAGE=crypto)
        types = {"/dev/sda": "", "/dev/sdb": "", "/dev/sda1": "ntfs", "/dev/sda2": "unknown",
                 "/dev/sdb1": "BitLocker"}

        def list_devices(self) -> list[str]:
            return ["/dev/sda", "/dev/sdb"]

        def list_partitions(self) -> list[str]:
            return ["/dev/sda1", "/dev/sda2", "/dev/sdb1"]

        def vfs_type(self, dev: str) -> str:
            return self.types[dev]

        def pread_device(self, dev: str, n: int, off: int) -> bytes:
            return (b"\xeb\x58\x90-FVE-FS-" if dev == "/dev/sda2" else b"\xeb\x52\x90NTFS    ")[:n]

    assert bitlocker_devices(G()) == ["/dev/sda2", "/dev/sdb1"]
