"""Smoke test of the installed `p2v --tui` in a real terminal (tmux, 80x25, TERM=linux).

The first screen must render (ASCII borders on TERM=linux), and Ctrl+Q must quit cleanly:
exit code 0 and the terminal given back.  A private tmux server (-L) keeps other sessions safe.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
P2V = ROOT / ".venv" / "bin" / "p2v"


def tmux(sock: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True,
                          timeout=30)


def wait(pred, timeout: float = 60) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_installed_p2v_tui_renders_and_quits(tmp_path: Path) -> None:
    if not shutil.which("tmux") or not P2V.exists():
        pytest.skip("needs tmux and the installed .venv/bin/p2v")
    sock = f"p2v-tui-{os.getpid()}"
    rc = tmp_path / "rc"
    cmd = (f"env TERM=linux {shlex.quote(str(P2V))} --tui --cmdline '' --known-hosts "
           f"{shlex.quote(str(tmp_path / 'known_hosts'))}; echo $? > {shlex.quote(str(rc))}")
    started = tmux(sock, "new-session", "-d", "-x", "80", "-y", "25", "-s", "p2v",
                   "sh", "-c", cmd)
    assert started.returncode == 0, started.stderr
    try:
        def screen() -> str:
            return tmux(sock, "capture-pane", "-p", "-t", "p2v").stdout

        assert wait(lambda: "Test connection" in screen()), screen()
        text = screen()
        assert "connect to the conversion server" in text
        assert "+- Conversion server" in text and "Ctrl+Q: quit" in text  # ASCII borders
        assert all(len(line) <= 80 for line in text.splitlines()) and text.isascii()
        tmux(sock, "send-keys", "-t", "p2v", "C-q")
        assert wait(rc.exists, 30), screen()
        assert rc.read_text().strip() == "0"
    finally:
        tmux(sock, "kill-server")
