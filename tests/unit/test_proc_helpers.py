"""The orphan check of proc_helpers can fail: a child that leaves a process behind is caught
after it exited and before it is reaped; a child that cleans up is not flagged."""

from __future__ import annotations

import os
import signal
import subprocess

from proc_helpers import exited_unreaped, tag_env, tagged


def test_orphan_left_by_an_exited_child_is_found() -> None:
    env, tag = tag_env()
    p = subprocess.Popen(["sh", "-c", "setsid sleep 60 </dev/null >/dev/null 2>&1 & exit 0"],
                         env=env)
    assert exited_unreaped(p.pid, 10)
    left = tagged(tag)
    try:
        assert len(left) == 1 and "sleep 60" in left[0], left
    finally:
        for line in left:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        p.wait()


def test_clean_child_leaves_nothing_tagged() -> None:
    env, tag = tag_env()
    p = subprocess.Popen(["sh", "-c", "sleep 0.2 & wait"], env=env)
    assert exited_unreaped(p.pid, 10)
    assert tagged(tag) == []
    assert p.wait() == 0
