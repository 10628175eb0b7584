"""Golden tests: convert fake guest trees of every family and compare everything that changed.

Each case under tests/golden/convert/<case>/ has ``in/`` (the guest tree before conversion) and
``case.json`` (the inspection data, target bus, NIC plans — a NIC's ``static`` is
``--mac MAC:ip:…`` — and optionally ``uuids``: the filesystem UUID of each inspected device).
The conversion runs on a copy with FakeGuest and fake guest tools (dpkg, rpm, update-initramfs,
dracut, vendor uninstallers) that edit the tree the way the real ones would.  ``out/`` holds
exactly what differs afterwards: ``tree/`` (every created or modified file), ``deleted.txt``,
``symlinks.txt``, plus ``commands.txt`` (argv of every guest command, in order), ``caps.json``
and ``warnings.txt``.
Regenerate with ``PYV2V_UPDATE_GOLDEN=1 pytest tests/unit/test_convert_golden.py`` and review
the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from pyv2v.v2v.convert import converter_for
from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.types import ConvertOptions, Inspect, StaticIp, TargetNicPlan

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "convert"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "in").is_dir())
UPDATE = os.environ.get("PYV2V_UPDATE_GOLDEN") == "1"


# Fake guest tools ------------------------------------------------------------------------------

def _dpkg(g: FakeGuest, argv: list[str]) -> str:
    assert argv[1] == "--purge", argv
    path = "/var/lib/dpkg/status"
    blocks = [b for b in re.split(r"\n\s*\n", g.read_text(path)) if b.strip()]
    keep = [b for b in blocks if b.splitlines()[0].split(": ", 1)[1] not in argv[2:]]
    g.write(path, "\n\n".join(keep) + "\n")
    return ""


def _rpm(g: FakeGuest, argv: list[str]) -> str:
    db = "/var/lib/rpm/pyv2v-fake-db"
    names = g.read_lines(db)
    if argv[1] == "-qa":
        return "".join(f"{n}\n" for n in names)
    assert argv[1] == "-e", argv
    g.write(db, "".join(f"{n}\n" for n in names if n not in argv[2:]))
    return ""


def _conf_dir(g: FakeGuest, d: str) -> str:
    if not g.is_dir(d):
        return ""
    return "".join(f"[{n}]\n{g.read_text(f'{d}/{n}')}" for n in g.ls(d))


def _update_initramfs(g: FakeGuest, argv: list[str]) -> str:
    version = argv[argv.index("-k") + 1]
    mods = "/etc/initramfs-tools/modules"
    g.write(f"/boot/initrd.img-{version}",
            f"fake initramfs-tools image for {version}\n--- modules ---\n"
            + (g.read_text(mods) if g.is_file(mods) else "")
            + "--- conf.d ---\n" + _conf_dir(g, "/etc/initramfs-tools/conf.d"))
    return ""


def _dracut(g: FakeGuest, argv: list[str]) -> str:
    initrd, version = argv[-2], argv[-1]
    drivers = argv[argv.index("--add-drivers") + 1]
    g.write(initrd, f"fake dracut image for {version}\nadd-drivers: {drivers}\n--- conf.d ---\n"
            + _conf_dir(g, "/etc/dracut.conf.d"))
    return ""


def _vmware_uninstall(g: FakeGuest, argv: list[str]) -> str:
    g.rm_rf("/etc/vmware-tools")
    g.rm_f("/usr/bin/vmware-uninstall-tools.pl")
    return ""


FAKE_TOOLS = {"dpkg": _dpkg, "rpm": _rpm, "update-initramfs": _update_initramfs,
              "dracut": _dracut, "vmware-uninstall-tools.pl": _vmware_uninstall}


# Tree snapshots --------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, bytes | tuple[str, str]]:
    out: dict[str, bytes | tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            rel = "/" + str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_file():
                out[rel] = p.read_bytes()
    return out


def load_case(case: str) -> tuple[Inspect, ConvertOptions]:
    spec = json.loads((GOLDEN / case / "case.json").read_text())
    ins = dict(spec["inspect"])
    ins["mountpoints"] = tuple(tuple(m) for m in ins["mountpoints"])
    nics = tuple(TargetNicPlan(**{**n, "static": StaticIp(**{**n["static"], "dns": tuple(
        n["static"].get("dns", ()))})} if "static" in n else n) for n in spec["nics"])
    return Inspect(**ins), ConvertOptions(block_bus=spec["block_bus"], nics=nics)


def run_case(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    tree = tmp_path / "root"
    shutil.copytree(GOLDEN / case / "in", tree, symlinks=True)
    before = snapshot(tree)
    inspect, opts = load_case(case)
    uuids = json.loads((GOLDEN / case / "case.json").read_text()).get("uuids", {})
    guest = FakeGuest(tree, FAKE_TOOLS, uuids)
    capsys.readouterr()
    caps = converter_for(inspect).convert(guest, inspect, opts)
    err = capsys.readouterr().err
    after = snapshot(tree)
    results: dict[str, str] = {}
    for path, data in sorted(after.items()):
        if before.get(path) == data:
            continue
        if isinstance(data, tuple):
            results.setdefault("symlinks.txt", "")
            results["symlinks.txt"] += f"{path} -> {data[1]}\n"
        else:
            results["tree" + path] = data.decode()
    deleted = sorted(set(before) - set(after))
    results["deleted.txt"] = "".join(f"{p}\n" for p in deleted)
    results["commands.txt"] = "".join(" ".join(c) + "\n" for c in guest.calls)
    results["caps.json"] = json.dumps(asdict(caps), indent=2, sort_keys=True) + "\n"
    results["warnings.txt"] = "".join(line.split("warning: ", 1)[1] + "\n"
                                      for line in err.splitlines() if "warning: " in line)
    # Every command ran with a full PATH and non-interactive settings.
    for argv, env in zip(guest.calls, guest.envs, strict=True):
        assert "/usr/sbin" in env.get("PATH", ""), argv
    return results


@pytest.mark.parametrize("case", CASES)
def test_convert_golden(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = run_case(case, tmp_path, capsys)
    out = GOLDEN / case / "out"
    if UPDATE:
        shutil.rmtree(out, ignore_errors=True)
        for rel, text in results.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(text)
    expected = {str(p.relative_to(out)): p.read_text()
                for p in out.rglob("*") if p.is_file()} if out.is_dir() else {}
    assert sorted(results) == sorted(expected), "the set of changed files differs from golden"
    for rel, text in results.items():
        assert text == expected[rel], f"{case}: {rel} differs from tests/golden/convert/{case}/out"
