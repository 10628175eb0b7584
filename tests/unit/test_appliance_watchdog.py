"""The appliance launch watchdog (v2v/appliance.py) with a fake libguestfs whose launch() runs a
real child process named like qemu (a copy of sleep(1)) and waits for it, as the direct backend
waits for its appliance: a "qemu" that hangs is killed after LAUNCH_TIMEOUT and the launch is
tried again with a new handle; a second hang is a one-line error; a cancel during the launch
kills the launching qemu.  Seen failing with the watchdog thread not started (the test's own
timeout then fires)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from pyv2v import accel, process
from pyv2v.errors import V2VError
from pyv2v.v2v import appliance


class Script:
    """How long each successive launch's "qemu" runs (None: until killed)."""

    def __init__(self, qemu: Path, runs: list[float | None]) -> None:
        self.qemu, self.runs = qemu, runs
        self.handles: list[Any] = []
        self.started: list[subprocess.Popen[bytes]] = []


def make_fake(script: Script) -> type:
    class Handle:
        def __init__(self, python_return_dict: bool = True) -> None:
            self.closed = False
            script.handles.append(self)

        def __getattr__(self, name: str) -> object:
            return lambda *a, **k: None

        def launch(self) -> None:
            secs = script.runs.pop(0)
            p = subprocess.Popen([str(script.qemu), str(secs if secs is not None else 600)])
            script.started.append(p)
            if p.wait() != 0:
                raise RuntimeError("guestfs_launch failed: appliance closed the connection")

        def get_pid(self) -> int:
            return script.started[-1].pid

        def close(self) -> None:
            self.closed = True
    return Handle


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    qemu = tmp_path / "qemu-system-fake"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", qemu)

    def install(runs: list[float | None]) -> Script:
        script = Script(qemu, runs)
        monkeypatch.setitem(sys.modules, "guestfs",
                            types.SimpleNamespace(GuestFS=make_fake(script)))
        return script
    monkeypatch.setattr(accel, "apply_to_environ", lambda: None)
    monkeypatch.setattr(appliance, "LAUNCH_TIMEOUT", 1.0)
    return install


def test_hung_launch_is_killed_and_tried_again(fake, capsys) -> None:  # type: ignore[no-untyped-def]
    script = fake([None, 0])
    t0 = time.monotonic()
    app = appliance.Appliance([])
    process.cancel_cleanup(app._hook)
    assert time.monotonic() - t0 < 30
    assert script.started[0].returncode == -9          # the hung "qemu" was killed
    assert len(script.handles) == 2 and script.handles[0].closed  # type: ignore[attr-defined]
    assert app.pid == script.started[1].pid
    assert "did not start within 1 s: its qemu was killed; trying again" in capsys.readouterr().err


def test_second_hang_is_one_error(fake) -> None:  # type: ignore[no-untyped-def]
    script = fake([None, None])
    with pytest.raises(V2VError, match=r"the libguestfs appliance did not start within 1 s, "
                                       r"2 times \(its qemu under \w+ hung\)"):
        appliance.Appliance([])
    assert [p.returncode for p in script.started] == [-9, -9]
    assert all(h.closed for h in script.handles)  # type: ignore[attr-defined]


def test_cancel_during_launch_kills_the_launching_qemu(fake, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(appliance, "LAUNCH_TIMEOUT", 600.0)
    script = fake([None])
    errors: list[BaseException] = []
    hooks_before = list(process._cleanups)

    def run() -> None:
        try:
            appliance.Appliance([])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not script.started and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert appliance.qemu_children() == {script.started[0].pid}
    for hook in [h for h in process._cleanups if h not in hooks_before]:
        hook()                                 # the appliance's part of what a SIGTERM runs
    t.join(10)
    assert not t.is_alive() and script.started[0].returncode == -9
    assert errors and isinstance(errors[0], V2VError), errors


def test_qemu_children_lists_only_our_qemu(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        assert other.pid not in appliance.qemu_children()
    finally:
        other.kill()
        other.wait()
