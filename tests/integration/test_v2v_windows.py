"""Real `v2v -i disk phony-X.img -o local` of each phony Windows guest, and the bad inputs.

One conversion per good fixture (win2022, win2008r2, win10, win2022-uefi) through the whole
pipeline against a fake virtio-win directory (the real layout, placeholder drivers); the four
outputs are then checked in ONE read-only libguestfs launch: viostor.sys in System32\\drivers, its
service set to start at boot (hivex on the converted SYSTEM hive), the first-boot runner and
scripts (VMware Tools' uninstall among them) queued, and each domain XML right for Windows.
The bad fixtures (hibernated, Fast Startup/dirty, BitLocker, corrupt hive) each fail with one
line and leave no output behind.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from v2v_helpers import assert_one_line_error, run_v2v

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from unit.test_convert_windows_golden import VIRTIO_OSES, fake_virtio_win  # noqa: E402

from pyv2v_harness.windows import windows_recipe  # noqa: E402
from pyv2v_harness.windows.image import mbr_signature  # noqa: E402

GOOD = ("win2022", "win2008r2", "win10", "win2022-uefi")
FB = "/Program Files/pyv2v/Firstboot"
LABEL_BYTES = 34 * 512  # MBR, or protective MBR + GPT header + partition entries


def _image(name: str) -> Path:
    from pyv2v_harness.windows import ensure_windows_image

    if os.geteuid() != 0:
        pytest.skip("the Windows fixtures are built with libguestfs as root")
    return ensure_windows_image(name)


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="session")
def windows_conversions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Convert each good fixture once; read back every output disk in one launch."""
    import guestfs
    import hivex

    base = tmp_path_factory.mktemp("v2v-windows")
    vw = base / "virtio-win"
    fake_virtio_win(vw, VIRTIO_OSES)
    env = {"VIRTIO_WIN": str(vw), "VIRT_TOOLS_DATA_DIR": str(base / "no-tools")}
    out: dict[str, dict[str, Any]] = {}
    for name in GOOD:
        img = _image(name)
        before = _sha(img)
        os_dir = base / name
        os_dir.mkdir()
        res = run_v2v(
            "-i", "disk", str(img), "-o", "local", "-os", str(os_dir), "-on", name, env=env
        )
        out[name] = {"res": res, "dir": os_dir, "source_unchanged": _sha(img) == before}
        with img.open("rb") as f:
            out[name]["source_mbr"] = f.read(LABEL_BYTES)
    g: Any = guestfs.GuestFS(python_return_dict=True)
    try:
        for name in GOOD:
            g.add_drive_opts(str(out[name]["dir"] / f"{name}-sda"), readonly=True)
        g.launch()
        roots = {r.rstrip("0123456789"): r for r in g.inspect_os()}
        for i, name in enumerate(GOOD):
            dev = f"/dev/sd{chr(97 + i)}"
            root = roots[dev]
            o = out[name]
            o["mbr"] = g.pread_device(dev, LABEL_BYTES, 0)
            o["drives"] = g.inspect_get_drive_mappings(root)
            g.mount_ro(root, "/")
            o["viostor"] = g.is_file("/Windows/System32/drivers/viostor.sys")
            o["scripts"] = sorted(g.ls(f"{FB}/scripts")) if g.is_dir(f"{FB}/scripts") else []
            o["runner"] = g.is_file(f"{FB}/firstboot.bat")
            o["runner_text"] = g.read_file(f"{FB}/firstboot.bat") if o["runner"] else b""
            o["gpo"] = (
                g.cat("/Windows/System32/GroupPolicy/Machine/Scripts/scripts.ini")
                if g.is_file("/Windows/System32/GroupPolicy/Machine/Scripts/scripts.ini")
                else ""
            )
            o["uninstall"] = b"".join(
                g.read_file(f"{FB}/scripts/{s}") for s in o["scripts"] if s.startswith("40-")
            )
            with tempfile.TemporaryDirectory() as td:
                g.download("/Windows/System32/config/SYSTEM", f"{td}/SYSTEM")
                h = hivex.Hivex(f"{td}/SYSTEM")
                cs = h.node_get_child(h.root(), "ControlSet001")
                svc = h.node_get_child(h.node_get_child(cs, "Services"), "viostor")
                o["viostor_start"] = h.value_dword(h.node_get_value(svc, "Start")) if svc else None
                md = h.node_get_child(h.root(), "MountedDevices")
                o["c_drive"] = h.value_value(h.node_get_value(md, "\\DosDevices\\C:"))[1]
            g.umount_all()
    finally:
        g.close()
    return out


@pytest.mark.parametrize("name", GOOD)
def test_windows_converts(windows_conversions: dict[str, dict[str, Any]], name: str) -> None:
    o = windows_conversions[name]
    res = o["res"]
    assert res.returncode == 0, res.stdout + res.stderr
    assert o["source_unchanged"]
    # The boot disk keeps its identity: MBR (signature at 0x1B8, partition table) or GPT header
    # as on the source, and C: still resolves to it (MountedDevices / the BCD name it by that).
    assert o["mbr"] == o["source_mbr"]
    assert o["drives"] == {"C": f"/dev/sd{chr(97 + GOOD.index(name))}" + (
        "2" if name.endswith("uefi") else "1")}
    if not name.endswith("uefi"):
        sig = mbr_signature(windows_recipe(name))
        assert int.from_bytes(o["mbr"][0x1B8:0x1BC], "little") == sig
        assert o["c_drive"][:4] == sig.to_bytes(4, "little")
    assert o["viostor"] and o["viostor_start"] == 0  # the boot disk's driver loads at boot
    assert o["runner"] and "10-pnputil-virtio-drivers.bat" in o["scripts"]
    assert "20-install-qemu-guest-agent.bat" in o["scripts"]
    assert b"MsiExec.exe /X{" in o["uninstall"]  # VMware Tools' own uninstall string
    assert "firstboot.bat" in o["gpo"]
    # ... and the runner takes that registration out again once its scripts are done
    assert b'del /f /q /a "C:\\Windows\\System32\\GroupPolicy\\Machine\\Scripts\\scripts.ini"' in (
        o["runner_text"])
    assert os.stat(o["dir"] / f"{name}-sda").st_mode & 0o077 == 0
    dom = etree.parse(
        str(o["dir"] / f"{name}.xml"), etree.XMLParser(resolve_entities=False, no_network=True)
    )
    assert dom.xpath("/domain/devices/disk[@device='disk']/target/@bus") == ["virtio"]
    assert dom.xpath("/domain/clock/@offset") == ["localtime"]
    assert dom.xpath("/domain/features/hyperv/relaxed/@state") == ["on"]
    assert dom.xpath("/domain/os/type/@machine") == ["q35"]
    uefi = name.endswith("uefi")
    assert bool(dom.xpath("/domain/os/loader[@type='pflash']")) == uefi
    # QXL where virtio-win had qxldod for this Windows (not for 2008 R2), as virt-v2v 2.0
    want_video = "vga" if name == "win2008r2" else "qxl"
    assert dom.xpath("/domain/devices/video/model/@type") == [want_video]
    assert dom.xpath("/domain/devices/tpm") == []  # neither the disk input nor the hive had one
    assert "Converting Windows" in res.stdout


@pytest.mark.parametrize(
    "name,needle",
    [
        ("win-hibernated", "Windows Hibernation or Fast Restart"),
        ("win-dirty", "Windows Hibernation or Fast Restart"),
        ("win-bitlocker", "BitLocker"),
        ("win-corrupt-hive", "corrupt"),
    ],
)
def test_windows_bad_inputs(tmp_path: Path, name: str, needle: str) -> None:
    img = _image(name)
    res = run_v2v(
        "-i",
        "disk",
        str(img),
        "-o",
        "local",
        "-os",
        str(tmp_path),
        "-on",
        "bad",
        env={"VIRTIO_WIN": str(tmp_path / "none")},
    )
    assert_one_line_error(res, needle)
    assert list(tmp_path.iterdir()) == []
