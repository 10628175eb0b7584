"""Orphan checks that can fail: find a run's processes by an environment tag, before reaping.

A check like "no live descendants of PID" after `wait()` cannot fail: by then any orphan belongs
to init.  Instead a test starts the program with `tag_env()` (an environment variable every
descendant inherits), waits until it has exited *without reaping it* (`exited_unreaped`), and
lists every live process on the machine still carrying the tag (`tagged`).  A process that
clears its environment would escape; nbdkit, qemu, qemu-img, ssh and libguestfs do not.

Under pytest-xdist another test runs at the same time on the other worker: `pgrep(pattern)`
(like `pgrep -af`) leaves out the processes of other workers (conftest puts WORKER_VAR with a
per-worker value into each worker's environment; their children inherit it), so "no process
matching X is left" is about this worker's tests, and untagged processes (an sshd's sessions)
still count.
"""

from __future__ import annotations

import os
import re
import time
import uuid

TAG = "PYV2V_TEST_RUN"
WORKER_VAR = "PYV2V_TEST_WORKER"


def tag_env(base: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """(environment with a fresh tag, the tag)."""
    tag = uuid.uuid4().hex
    return {**(base if base is not None else os.environ), TAG: tag}, tag


def _environ_has(pid: str, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return needle in f.read().split(b"\0")
    except OSError:  # gone, or a zombie
        return False


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _state(pid: int | str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError):
        return ""


def tagged(tag: str, var: str = TAG) -> list[str]:
    """'PID CMDLINE' of every live (non-zombie) process whose environment has var=tag."""
    needle = f"{var}={tag}".encode()
    me = str(os.getpid())
    return [f"{p} {_cmdline(p)}" for p in os.listdir("/proc")
            if p.isdigit() and p != me and _environ_has(p, needle) and _state(p) not in "ZX"]


def exited_unreaped(pid: int, timeout: float) -> bool:
    """Wait until our child `pid` has exited, leaving it unreaped (a zombie whose children,
    if any survive, are orphans).  False if it is still running at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.05)
    return False


def worker_tag() -> str:
    """The WORKER_VAR value for this pytest process (an xdist worker or a plain run)."""
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"


def _other_worker(pid: str, mine: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    prefix = WORKER_VAR.encode() + b"="
    return any(v.startswith(prefix) and v != mine for v in env)


def pgrep(pattern: str) -> list[str]:
    """'PID CMDLINE' of live processes whose command line matches `pattern` (a regex, as
    `pgrep -f`), except this process and the processes of other test workers."""
    rx = re.compile(pattern)
    me = str(os.getpid())
    mine = f"{WORKER_VAR}={os.environ.get(WORKER_VAR, '')}".encode()
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or p == me:
            continue
        cmd = _cmdline(p)
        if cmd and rx.search(cmd) and _state(p) not in "ZX" and not _other_worker(p, mine):
            found.append(f"{p} {cmd}")
    return found
