"""The whole console UI flow against the real loopback sshd (p2v_fixtures), driven by Pilot.

Everything is real except virt-v2v in the fast tests (the fixture's fake one reads every disk
through the tunnel): ssh-keyscan + host key acceptance, test connection, nbdkit + ssh -R, the
remote work dir, the control connection, and a cancel from the UI that must leave no process
on either side.  The slow test uses OUR v2v as the server's virt-v2v for a real conversion of
the debian12-physical fixture to -o null.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from p2v_fixtures import Sshd, p2v_children
from textual.widgets import Select
from unit.test_tui_support import drive, push, text_of, until

from pyv2v.p2v.engine import RealEngine
from pyv2v.p2v.tui.app import P2VApp
from pyv2v.p2v.tui.glyphs import screen_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tui_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui-img") / "disk.img"
    with open(path, "wb") as f:
        f.truncate(16 << 20)
        f.write(os.urandom(1 << 20))
    return path


async def connect_and_configure(pilot, sshd: Sshd, output: str) -> None:  # type: ignore[no-untyped-def]
    """Connection screen → accept the real host key → conversion screen with -o `output`."""
    app: P2VApp = pilot.app
    await push(pilot, "#test")
    await until(pilot, lambda: app.screen.query_one("#hostkey-box").has_class("-shown"), 60)
    # The key the server really has is shown (once the screen has been redrawn).
    await until(pilot, lambda: sshd.fingerprint in screen_text(app), 10)
    await push(pilot, "#accept")
    await until(pilot, lambda: app.server_info is not None or "failed" in screen_text(app), 120)
    assert app.server_info is not None, (await text_of(pilot))
    assert app.cfg.hostkey == sshd.fingerprint
    await push(pilot, "#next")
    sel = app.screen.query_one("#output_type", Select)
    names = [str(o[0]) for o in sel._options]
    assert output in names  # offered because the server's virt-v2v lists it
    steps = names.index(output) - names.index(str(sel.value))
    sel.focus()
    await pilot.press("enter")  # open the list, move to `output`, choose it
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
    await pilot.pause()
    assert sel.value == output
    await push(pilot, "#start")
    await until(pilot, lambda: type(app.screen).__name__ == "RunningScreen")


def test_full_flow_through_the_ui(p2v_sshd: Sshd, tmp_path: Path, tui_image: Path) -> None:
    cfg = p2v_sshd.config(tmp_path, disks=[str(tui_image)], output_misc=["fake-note=ui"])
    engine = RealEngine()
    app = P2VApp(cfg, None, engine=engine, ascii=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await connect_and_configure(pilot, p2v_sshd, "null")
        await until(pilot, lambda: app.result is not None, 180)
        text = await text_of(pilot)
        assert app.result is not None and app.result.ok, text
        assert "Conversion finished successfully." in text and "Copying disk 1/1" in text
        assert app.result.remote_dir and app.result.remote_dir in text
        await pilot.press("enter")  # Quit

    drive(app, script)
    assert engine.sessions_opened == 1  # the test connection's session served the run
    engine.close()
    assert app.return_code == 0
    rdir = Path(app.result.remote_dir or "")  # type: ignore[union-attr]
    argv = json.loads((rdir / "fake-v2v-argv.json").read_text())
    assert argv[argv.index("-o") + 1] == "null" and "fake-note=ui" in argv
    disks = json.loads((rdir / "fake-v2v-result.json").read_text())["disks"]
    assert disks[0]["size"] == 16 << 20 and disks[0]["write_refused"]
    assert p2v_children() == []


def test_cancel_from_the_ui_stops_the_remote_side(p2v_sshd: Sshd, tmp_path: Path,
                                                  tui_image: Path) -> None:
    cfg = p2v_sshd.config(tmp_path, disks=[str(tui_image)], output_misc=["fake-sleep=600"])
    engine = RealEngine()
    app = P2VApp(cfg, None, engine=engine, ascii=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await connect_and_configure(pilot, p2v_sshd, "null")
        await until(pilot, lambda: "Copying disk" in screen_text(app), 120)
        assert p2v_sshd.procs(str(p2v_sshd.fake_bin))  # the remote conversion runs
        await push(pilot, "#cancel")
        assert type(app.screen).__name__ == "ConfirmDialog"
        await pilot.press("left", "enter")  # "Yes, cancel it"
        await until(pilot, lambda: app.result is not None, 60)
        assert app.result is not None and app.result.cancelled, (await text_of(pilot))
        assert "conversion cancelled by user" in (await text_of(pilot))
        await until(pilot, lambda: not p2v_sshd.procs(str(p2v_sshd.fake_bin)), 15)
        await pilot.press("ctrl+q")

    drive(app, script)
    engine.close()
    assert app.return_code == 1
    assert p2v_children() == []


@pytest.mark.slow
def test_real_conversion_with_our_v2v_to_null(sshd_factory, debian12_physical: Path,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    v2v = ROOT / ".venv" / "bin" / "v2v"
    if not v2v.exists():
        pytest.skip("our v2v is not installed in .venv")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "virt-v2v").symlink_to(v2v)
    tmp_path.chmod(0o755)
    env = {"LIBGUESTFS_BACKEND": "direct"}
    if os.environ.get("LIBGUESTFS_BACKEND_SETTINGS"):
        env["LIBGUESTFS_BACKEND_SETTINGS"] = os.environ["LIBGUESTFS_BACKEND_SETTINGS"]
    sshd = sshd_factory(fake_version=None, env=env, path=[
        str(bindir), *(d for d in ("/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
                       if os.path.isdir(d))])
    cfg = sshd.config(tmp_path, disks=[str(debian12_physical)], guestname="tuideb12",
                      memory=2 << 30)
    engine = RealEngine()
    app = P2VApp(cfg, None, engine=engine, ascii=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await connect_and_configure(pilot, sshd, "null")
        await until(pilot, lambda: app.result is not None, 1500)
        assert app.result is not None and app.result.ok, (await text_of(pilot))

    drive(app, script)
    engine.close()
    rdir = Path(app.result.remote_dir or "")  # type: ignore[union-attr]
    assert (rdir / "status").read_text().strip() == "0"
    log = (rdir / "virt-v2v-conversion-log.txt").read_text()
    assert "null" in log
    assert p2v_children() == []
    shutil.rmtree(rdir, ignore_errors=True)
