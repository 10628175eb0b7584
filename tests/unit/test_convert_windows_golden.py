"""Golden tests of the Windows converter on the phony guests' real hives (no appliance).

Each case builds the recipe's file tree and hives (pyv2v_harness.windows: the same content the
phony disk images carry) in a temporary directory, converts it with FakeGuest against a fake
virtio-win directory, and compares with tests/golden/convert/windows/<case>/:
``SYSTEM.reg.diff``/``SOFTWARE.reg.diff`` (hivexregedit --export before → after, per key),
``tree.txt`` (every created or modified file: text files in full under ``tree/``, others by
size and sha256), ``caps.json``, ``domain.xml`` (-o local's XML for it) and ``warnings.txt``.
Regenerate with ``PYV2V_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from pyv2v.v2v.convert import converter_for
from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.outputs.domain_xml import build_domain
from pyv2v.v2v.types import (
    ConvertOptions,
    Inspect,
    Source,
    SourceDisk,
    StaticIp,
    TargetDisk,
    TargetMeta,
    TargetNicPlan,
)
from pyv2v_harness.windows import hive, layout, registry
from pyv2v_harness.windows.image import c_drive_value
from pyv2v_harness.windows.recipes import windows_recipe

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "convert" / "windows"
UPDATE = os.environ.get("PYV2V_UPDATE_GOLDEN") == "1"
CONFIG = "/Windows/System32/config"
TEXT_SUFFIXES = (".bat", ".ini", ".inf", ".txt")
VIRTIO_DRIVERS = {
    "viostor": ("sys", "inf", "cat"),
    "vioscsi": ("sys", "inf", "cat"),
    "NetKVM": ("sys", "inf", "cat"),
    "Balloon": ("sys", "inf", "cat"),
    "vioserial": ("sys", "inf", "cat"),
    "viorng": ("sys", "inf", "cat"),
    "qxldod": ("sys", "inf", "cat"),
}
VIRTIO_FILE = {"NetKVM": "netkvm", "Balloon": "balloon", "vioserial": "vioser"}
# drivers shipped for some versions only (as in the harness's fake virtio-win)
VIRTIO_ONLY = {"qxldod": ("w10", "2k16", "2k19", "2k22", "w11")}
VIRTIO_OSES = ("2k8R2", "w7", "2k12R2", "w10", "2k16", "2k19", "2k22", "w11")
MAC = "52:54:00:12:34:56"

# case → (recipe, requested bus, virtio-win oses (None: no VIRTIO_WIN), service wrapper, nics)
CASES: dict[str, tuple[str, str, tuple[str, ...] | None, bool, tuple[TargetNicPlan, ...]]] = {
    "win2022": (
        "win2022",
        "virtio-blk",
        VIRTIO_OSES,
        False,
        (TargetNicPlan(MAC, None, "default"),),
    ),
    "win2008r2": (
        "win2008r2",
        "virtio-blk",
        VIRTIO_OSES,
        True,
        (TargetNicPlan(MAC, None, "default"),),
    ),
    "win10": (
        "win10",
        "virtio-scsi",
        VIRTIO_OSES,
        False,
        (
            TargetNicPlan(
                MAC, None, "default", static=StaticIp("10.0.0.9", 24, "10.0.0.1", ("10.0.0.2",))
            ),
        ),
    ),
    "win2022-uefi": ("win2022-uefi", "virtio-blk", VIRTIO_OSES, False, ()),
    "win2022-uefi-no-virtio-win": ("win2022-uefi", "virtio-blk", None, False, ()),
}


def fake_virtio_win(root: Path, oses: tuple[str, ...]) -> None:
    for drv, exts in VIRTIO_DRIVERS.items():
        for os_ in oses:
            if os_ not in VIRTIO_ONLY.get(drv, oses):
                continue
            d = root / drv / os_ / "amd64"
            d.mkdir(parents=True, exist_ok=True)
            for ext in exts:
                name = f"{VIRTIO_FILE.get(drv, drv)}.{ext}"
                (d / name).write_text(f"fake {drv}/{os_}/amd64/{name}\n")
            if drv == "Balloon":
                (d / "blnsvr.exe").write_bytes(b"MZ fake blnsvr\n")
    (root / "guest-agent").mkdir(exist_ok=True)
    (root / "guest-agent" / "qemu-ga-x86_64.msi").write_bytes(b"fake qemu-ga msi\n")
    (root / "guest-agent" / "qemu-ga-i386.msi").write_bytes(b"fake qemu-ga 32-bit msi\n")


def build_tree(name: str, root: Path) -> Inspect:
    r = windows_recipe(name)
    files = {**layout.windows_files(r.product_name), **layout.bios_boot_files()}
    for path, data in files.items():
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    cfg = root / CONFIG.lstrip("/")
    cfg.mkdir(parents=True, exist_ok=True)
    hive.build_hive(cfg / "SOFTWARE", registry.software(r))
    hive.build_hive(cfg / "SYSTEM", registry.system(r, c_drive_value(r)))
    dev = "/dev/sda2" if r.firmware == "uefi" else "/dev/sda1"
    return Inspect(
        root=dev,
        type="windows",
        distro="windows",
        major=r.major,
        minor=r.minor,
        arch="x86_64",
        product_name=r.product_name,
        package_format="unknown",
        package_management="unknown",
        hostname=r.hostname,
        mountpoints=(("/", dev),),
        firmware=r.firmware,
    )


def export(path: Path, prefix: str) -> dict[str, list[str]]:
    """hivexregedit --export, as key → its value lines."""
    out = subprocess.run(
        [
            "hivexregedit",
            "--export",
            "--unsafe-printable-strings",
            "--prefix",
            prefix,
            str(path),
            "\\",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    keys: dict[str, list[str]] = {}
    cur: list[str] = []
    for line in out.replace("\r\n", "\n").splitlines():
        if line.startswith("["):
            cur = keys.setdefault(line, [])
        elif line.strip() and not line.startswith("Windows Registry Editor"):
            cur.append(line)
    return keys


def reg_diff(old: dict[str, list[str]], new: dict[str, list[str]]) -> str:
    """Added keys (+), removed keys (-), and for changed keys their -/+ value lines."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out.append(f"-{key}\n")
        elif key not in old:
            out += [f"+{key}\n"] + [f"+  {v}\n" for v in new[key]]
        elif old[key] != new[key]:
            out.append(f" {key}\n")
            out += [f"-  {v}\n" for v in old[key] if v not in new[key]]
            out += [f"+  {v}\n" for v in new[key] if v not in old[key]]
    return "".join(out)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        "/" + str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def domain_for(caps_inspect: tuple[object, Inspect], tmp: Path) -> str:
    caps, inspect = caps_inspect
    src = Source(
        name="win",
        hypervisor="vmware",
        memory=4 * 1024**3,
        vcpus=2,
        disks=(SourceDisk(0, "/in/win.img", "raw"),),
    )
    disks = tuple(
        TargetDisk(f"/out/win-sd{chr(97 + i)}", "raw", dev, 256 * 1024**2)
        for i, dev in enumerate(caps.target_devs)
    )  # type: ignore[attr-defined]
    meta = TargetMeta(
        name="win",
        source=src,
        inspect=inspect,
        caps=caps,  # type: ignore[arg-type]
        disks=disks,
        nics=(TargetNicPlan(MAC, None, "default"),),
    )
    return build_domain(meta) + "\n"


def run_case(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    recipe, bus, oses, wrapper, nics = CASES[case]
    tree = tmp_path / "root"
    inspect = build_tree(recipe, tree)
    tools = tmp_path / "virt-tools"
    tools.mkdir()
    if wrapper:
        (tools / "rhsrvany.exe").write_bytes(b"MZ fake rhsrvany\n")
    monkeypatch.setenv("VIRT_TOOLS_DATA_DIR", str(tools))
    monkeypatch.delenv("VIRTIO_WIN_DIR", raising=False)
    if oses is None:
        monkeypatch.delenv("VIRTIO_WIN", raising=False)
        monkeypatch.setattr(
            "pyv2v.v2v.convert.windows.virtio_win.DEFAULT_DIR", str(tmp_path / "none")
        )
        monkeypatch.setattr(
            "pyv2v.v2v.convert.windows.virtio_win.DEFAULT_ISO", str(tmp_path / "none.iso")
        )
    else:
        fake_virtio_win(tmp_path / "virtio-win", oses)
        monkeypatch.setenv("VIRTIO_WIN", str(tmp_path / "virtio-win"))
    before = snapshot(tree)
    regs = {
        h: export(tree / CONFIG.lstrip("/") / h, f"HKEY_LOCAL_MACHINE\\{h}")
        for h in ("SYSTEM", "SOFTWARE")
    }
    capsys.readouterr()
    opts = ConvertOptions(block_bus=bus, nics=nics, disk_count=1)
    caps = converter_for(inspect).convert(FakeGuest(tree), inspect, opts)
    err = capsys.readouterr().err
    after = snapshot(tree)
    results: dict[str, str] = {}
    for h, old in regs.items():
        new = export(tree / CONFIG.lstrip("/") / h, f"HKEY_LOCAL_MACHINE\\{h}")
        results[f"{h}.reg.diff"] = reg_diff(old, new)
    listing = []
    for path, data in after.items():
        if before.get(path) == data or path.startswith(CONFIG + "/"):
            continue
        state = "modified" if path in before else "created"
        if path.lower().endswith(TEXT_SUFFIXES):
            text = data.decode("utf-16" if data.startswith(b"\xff\xfe") else "utf-8")
            results["tree" + path] = text.replace("\r\n", "\n")
            crlf = b"\r\n" in data
            listing.append(f"{state} {path} (text, CRLF={crlf})\n")
        else:
            listing.append(f"{state} {path} {len(data)} {hashlib.sha256(data).hexdigest()[:16]}\n")
    listing += [f"deleted {p}\n" for p in sorted(set(before) - set(after))]
    results["tree.txt"] = "".join(listing)
    results["caps.json"] = json.dumps(asdict(caps), indent=2, sort_keys=True) + "\n"
    results["domain.xml"] = domain_for((caps, inspect), tmp_path)
    results["warnings.txt"] = "".join(
        line.split("warning: ", 1)[1] + "\n" for line in err.splitlines() if "warning: " in line
    )
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_convert_windows_golden(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = run_case(case, tmp_path, capsys, monkeypatch)
    out = GOLDEN / case
    if UPDATE:
        shutil.rmtree(out, ignore_errors=True)
        for rel, text in results.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(text)
    expected = (
        {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
        if out.is_dir()
        else {}
    )
    assert sorted(results) == sorted(expected), "the set of changed files differs from golden"
    for rel, text in results.items():
        assert text == expected[rel], f"{case}: {rel} differs from {out}"
