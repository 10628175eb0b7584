"""The Group Policy first-boot runner unregisters exactly what the conversion registered.

No Windows boots here, so the generated ``firstboot.bat`` is read back and its clean-up commands
(``attrib``/``copy``/``del``/``rd`` after the script loop) are executed by a small interpreter on
the converted FakeGuest tree: afterwards the guest's GroupPolicy files and directories must be
exactly as before the conversion (gpt.ini only with its version raised), and the runner must
have touched nothing else but its own staged copies and itself.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.windows import firstboot, gpo
from pyv2v.v2v.convert.windows.facts import WindowsInfo
from pyv2v.v2v.convert.windows.registry import Hive

from .test_convert_windows_golden import CONFIG, build_tree

GP = "/Windows/System32/GroupPolicy"
FB = firstboot.GUEST_DIR
OWN_SCRIPTS = "[Startup]\r\n0CmdLine=C:\\admin\\audit.cmd\r\n0Parameters=-q\r\n"
OWN_GPT = "[General]\r\ngPCMachineExtensionNames=[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}]\r\n" \
    "Version=3\r\n"


def tree_files(root: Path) -> dict[str, bytes]:
    return {"/" + str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def tree_dirs(root: Path) -> set[str]:
    return {"/" + str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


def guest_path(win: str) -> str:
    assert win[:2].upper() == "C:", win
    return win[2:].replace("\\", "/")


def cleanup_commands(runner: str) -> list[list[str]]:
    """The commands after the script loop, redirections dropped, %fb% and %~f0 expanded."""
    tail = runner.replace("\r\n", "\n").split("\n)\n", 1)[1]
    cmds = []
    for line in tail.splitlines():
        line = line.replace("(goto) 2>nul & ", "")
        line = line.split(" >> ", 1)[0]
        line = line.replace("%fb%", "C:" + FB.replace("/", "\\") + "\\")
        line = line.replace("%~f0", "C:" + FB.replace("/", "\\") + "\\firstboot.bat")
        cmds.append(shlex.split(line.replace("\\", "\\\\")))
    return cmds


def run_cleanup(guest: FakeGuest, cmds: list[list[str]]) -> set[str]:
    """Execute the clean-up on the tree; returns the guest paths it wrote or removed."""
    touched = set()
    for argv in cmds:
        verb, args = argv[0].lower(), [a for a in argv[1:] if not a.startswith(("/", "-"))]
        if verb in ("echo", "attrib"):
            continue
        paths = [guest_path(a) for a in args]
        if verb == "copy":
            guest.write(paths[1], guest.read(paths[0]))
            touched.add(paths[1])
        elif verb == "del":
            assert guest.is_file(paths[0]), f"del of a file that is not there: {paths[0]}"
            guest.rm_f(paths[0])
            touched.add(paths[0])
        elif verb == "rd" and "/s" in [a.lower() for a in argv]:
            guest.rm_rf(paths[0])
            touched.add(paths[0])
        elif verb == "rd":
            p = guest.host_path(paths[0])
            if not any(p.iterdir()):  # rd without /s removes empty directories only
                p.rmdir()
            touched.add(paths[0])
        else:
            raise AssertionError(f"unexpected command in the clean-up: {argv}")
    return touched


def convert_firstboot(root: Path) -> tuple[FakeGuest, str]:
    guest = FakeGuest(root)
    info = WindowsInfo(
        "Windows Server 2022 Standard", 10, 0, 20348, "ServerStandard", "Server", "x86_64",
        "/Windows", "ControlSet001",
    )
    fb = firstboot.Firstboot(guest, info, "C:")
    fb.queue("10-example", "echo hello\n")
    system = Hive.open(guest, f"{CONFIG}/SYSTEM", "HKLM\\SYSTEM")
    try:
        assert fb.install(system) == "group-policy"
    finally:
        system.close()
    return guest, guest.read(f"{FB}/firstboot.bat").decode()


@pytest.fixture(autouse=True)
def _no_wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRT_TOOLS_DATA_DIR", str(tmp_path / "no-virt-tools"))


@pytest.mark.parametrize("existing", [False, True], ids=["no-local-gpo", "own-gpo-utf16"])
def test_runner_undoes_exactly_its_registration(tmp_path: Path, existing: bool) -> None:
    root = tmp_path / "root"
    build_tree("win2022", root)
    if existing:  # the guest's own startup script (UTF-16 as Windows writes it) and policy
        (root / GP.lstrip("/") / "Machine/Scripts/Startup").mkdir(parents=True)
        (root / GP.lstrip("/") / "Machine/Scripts/scripts.ini").write_bytes(
            b"\xff\xfe" + OWN_SCRIPTS.encode("utf-16-le"))
        (root / GP.lstrip("/") / "gpt.ini").write_bytes(OWN_GPT.encode())
    files0, dirs0 = tree_files(root), tree_dirs(root)
    guest, runner = convert_firstboot(root)
    files1, dirs1 = tree_files(root), tree_dirs(root)

    # Registered: our entry in scripts.ini, gpt.ini naming the Scripts extension, version up.
    text, _ = gpo.decode_ini(files1[f"{GP}/Machine/Scripts/scripts.ini"])
    n = 1 if existing else 0
    assert f"{n}CmdLine=C:\\Program Files\\pyv2v\\Firstboot\\firstboot.bat" in text
    gpt1 = files1[f"{GP}/gpt.ini"].decode()
    assert gpo.SCRIPTS_CSE in gpt1 and gpo.gpt_version(gpt1) == (4 if existing else 1)
    registered = {p for p, data in files1.items() if p.startswith(GP) and files0.get(p) != data}
    assert registered == {f"{GP}/Machine/Scripts/scripts.ini", f"{GP}/gpt.ini"}

    cmds = cleanup_commands(runner)
    touched = run_cleanup(guest, cmds)
    files2, dirs2 = tree_files(root), tree_dirs(root)

    # The clean-up targets exactly what was registered: the two policy files and the policy
    # directories the conversion created; outside the policy only its staged copies and itself.
    gp_touched = {p for p in touched if p.startswith(GP)}
    assert gp_touched == registered | {d for d in dirs1 - dirs0 if d.startswith(GP)}
    assert {p for p in touched if not p.startswith(GP)} <= {
        f"{FB}/{gpo.STAGE}", f"{FB}/firstboot.bat"}
    # After it: the guest's policy as it was (gpt.ini's version raised once more).
    for p, data in files0.items():
        if p == f"{GP}/gpt.ini":
            assert files2[p].decode() == OWN_GPT.replace("Version=3", "Version=5")
        else:
            assert files2[p] == data, p
    assert {p for p in files2 if p.startswith(GP)} == {p for p in files0 if p.startswith(GP)}
    assert {d for d in dirs2 if d.startswith(GP)} == {d for d in dirs0 if d.startswith(GP)}
    # The runner is gone, its log directory stays for the scripts' log and scripts-done.
    assert f"{FB}/firstboot.bat" not in files2 and not guest.exists(f"{FB}/{gpo.STAGE}")
    assert guest.is_file(f"{FB}/scripts/10-example.bat")  # (moved by the loop on Windows)
    assert "scripts-done" in runner and 'set log=%fb%log.txt' in runner


def test_service_wrapper_runner_deletes_its_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    tools = tmp_path / "virt-tools"
    tools.mkdir()
    (tools / "rhsrvany.exe").write_bytes(b"MZ")
    monkeypatch.setenv("VIRT_TOOLS_DATA_DIR", str(tools))
    root = tmp_path / "root"
    build_tree("win2022", root)
    guest = FakeGuest(root)
    info = replace(WindowsInfo("W", 10, 0, 1, "S", "Server", "x86_64", "/Windows",
                               "ControlSet001"))
    fb = firstboot.Firstboot(guest, info, "C:")
    fb.queue("10-example", "echo hello\n")
    system = Hive.open(guest, f"{CONFIG}/SYSTEM", "HKLM\\SYSTEM")
    try:
        assert fb.install(system) == "rhsrvany"
    finally:
        system.close()
    runner = guest.read(f"{FB}/firstboot.bat").decode()
    assert f"sc.exe delete {firstboot.SERVICE}" in runner
    assert not guest.exists(GP)
