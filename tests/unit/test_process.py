"""process.run's two deadlines: `timeout` is an error, `kill_after` is an answer (the process
group is killed, what it printed is returned) — the accelerator probe relies on the second."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from pyv2v import process
from pyv2v.errors import ProcessError

# Prints, starts a grandchild that records its pid, then both sleep far past any deadline.
SCRIPT = """
import os, subprocess, sys, time
print("hello from the child", flush=True)
sys.stderr.write("and its stderr\\n"); sys.stderr.flush()
g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(sys.argv[1], "w").write(str(g.pid))
time.sleep(300)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _eventually_gone(pid: int) -> bool:
    for _ in range(50):
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


def _wait_pidfile(path: Path) -> int:
    for _ in range(100):
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError("no pid file")


def test_kill_after_returns_output_and_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    start = time.monotonic()
    res = process.run([sys.executable, "-c", SCRIPT, str(pidfile)], kill_after=2, check=False)
    assert time.monotonic() - start < 10
    assert res.timed_out and res.rc == -9
    assert res.out == "hello from the child\n" and res.err == "and its stderr\n"
    assert _eventually_gone(_wait_pidfile(pidfile))
    assert not [c for c in process.live_children() if c.argv[0] == sys.executable]


def test_kill_after_is_not_needed_by_a_quick_command() -> None:
    res = process.run([sys.executable, "-c", "print('done')"], kill_after=30)
    assert res.out == "done\n" and res.rc == 0 and not res.timed_out


def test_timeout_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="timed out"):
        process.run([sys.executable, "-c", SCRIPT, str(tmp_path / "pid")], timeout=1)
    assert _eventually_gone(_wait_pidfile(tmp_path / "pid"))


def test_timeout_and_kill_after_are_exclusive() -> None:
    with pytest.raises(ValueError):
        process.run(["true"], timeout=1, kill_after=1)


CANCEL_DURING_WATCHER_CLEANUP = r"""
import signal, threading, time
from pyv2v import process
from pyv2v.errors import Cancelled

process.install_cancel_handlers()
process.on_cleanup(lambda: time.sleep(1.5))      # a slow cleanup, run by another thread
t = threading.Thread(target=process.cleanup_all)
t.start()
while not process._cleaning_now:
    time.sleep(0.01)
try:
    signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)   # the main thread's handler
except Cancelled:
    print("cancelled")
else:
    print("swallowed")
t.join()
"""


def test_signal_cancels_main_thread_while_another_thread_cleans_up() -> None:
    """The cancel watcher's cleanup (another thread) must not swallow the main thread's Cancelled:
    pure-Python work (a poll loop, a fleet job) would otherwise run on after a cancel."""
    res = process.run([sys.executable, "-c", CANCEL_DURING_WATCHER_CLEANUP], timeout=60)
    assert res.out.strip() == "cancelled", res.out + res.err
