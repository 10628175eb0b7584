"""The one way to run programs: argv lists (never a shell), timeouts, and a cleanup registry.

Every long-running child (nbdkit, qemu-nbd, ssh, qemu) is started with `spawn`, in its own
process group, and registered so that `cleanup_all` (run at exit, on SIGINT/SIGTERM, and by the
entry points' error paths) terminates it and its children: a cancel or a crash leaves no orphans.
Short commands go through `run`, which raises `ProcessError` with the program's stderr (or, with
`kill_after`, kills the command at its deadline and returns what it printed: a probe).
Callers pass the standard stream settings as `process.DEVNULL`, `PIPE` and `STDOUT`, so nothing
outside this module needs `subprocess`.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from . import log
from .errors import Cancelled, ProcessError, V2VError

DEVNULL = subprocess.DEVNULL
PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
TimeoutExpired = subprocess.TimeoutExpired   # raised by Child.wait(timeout)


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str
    timed_out: bool = False   # only with run(kill_after=...): killed at the deadline


_lock = threading.Lock()
_children: list[Child] = []
_cleanups: list[Callable[[], None]] = []


def _env(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    if not extra:
        return None
    env = dict(os.environ)
    env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    cwd: str | None = None,
    kill_after: float | None = None,
) -> Result:
    """Run a command to completion, capturing output as text.

    `timeout` is an error (ProcessError).  `kill_after` is a deadline that is an answer: the
    process group is killed then and the Result (rc -9, `timed_out`) holds what it printed by
    then; `check` does not apply to a killed run.
    """
    if timeout is not None and kill_after is not None:
        raise ValueError("run: timeout and kill_after are exclusive")
    argv = [str(a) for a in argv]
    log.debug("run: " + " ".join(argv))
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(env), cwd=cwd,
            start_new_session=True, errors="replace",
        )
    except FileNotFoundError as e:
        raise V2VError(f"program not found: {argv[0]}") from e
    child = Child(argv, proc)
    _register(child)
    try:
        deadline = timeout if timeout is not None else kill_after
        out, err = proc.communicate(input=input, timeout=deadline)
    except subprocess.TimeoutExpired as e:
        if timeout is not None:
            child.terminate()
            raise ProcessError(argv, None, "", f"no answer after {timeout:g} s") from e
        child.signal_group(signal.SIGKILL)
        out, err = proc.communicate()        # the output so far (the pipes are closed now)
        return Result(argv, proc.returncode, out, err, timed_out=True)
    finally:
        _unregister(child)
    if check and proc.returncode != 0:
        raise ProcessError(argv, proc.returncode, out, err)
    return Result(argv, proc.returncode, out, err)


class Child:
    """A registered child process running in its own process group."""

    def __init__(self, argv: list[str], proc: subprocess.Popen[str]) -> None:
        self.argv = argv
        self.proc = proc
        self.thread = threading.get_ident()  # the thread that started it

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout)
        _unregister(self)
        return rc

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self, grace: float = 3.0) -> None:
        """SIGTERM the process group, then SIGKILL it after `grace` seconds."""
        if self.proc.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(5)
        else:
            # The leader is gone; make sure nothing it left in its group survives.
            self.signal_group(signal.SIGKILL)
        _unregister(self)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    pass_fds: Sequence[int] = (),
    cwd: str | None = None,
) -> Child:
    """Start a long-running child, registered for cleanup."""
    argv = [str(a) for a in argv]
    log.debug("spawn: " + " ".join(argv))
    try:
        proc = subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=stderr, text=True, env=_env(env),
            start_new_session=True, pass_fds=tuple(pass_fds), cwd=cwd, errors="replace",
        )
    except FileNotFoundError as e:
        raise V2VError(f"program not found: {argv[0]}") from e
    child = Child(argv, proc)
    _register(child)
    return child


def _register(child: Child) -> None:
    with _lock:
        _children.append(child)


def _unregister(child: Child) -> None:
    with _lock:
        if child in _children:
            _children.remove(child)


def on_cleanup(fn: Callable[[], None]) -> Callable[[], None]:
    """Register a function run (last registered first) by `cleanup_all`."""
    with _lock:
        _cleanups.append(fn)
    return fn


def cancel_cleanup(fn: Callable[[], None]) -> None:
    with _lock:
        if fn in _cleanups:
            _cleanups.remove(fn)


_cleaning = threading.RLock()  # held for a whole cleanup_all: a second caller waits for it
_cleaning_now: list[int] = []  # ids of the threads running cleanup_all now


def cleanup_all() -> None:
    """Terminate every registered child and run registered cleanups.  A concurrent call (the
    cancel watcher and the main thread's error path) returns only once the first is done, so
    the program cannot exit, killing the daemon watcher, in the middle of a cleanup."""
    with _cleaning:
        _cleaning_now.append(threading.get_ident())
        try:
            _cleanup_locked()
        finally:
            _cleaning_now.pop()


def _cleanup_locked() -> None:
    with _lock:
        children = list(reversed(_children))
        fns = list(reversed(_cleanups))
        _cleanups.clear()
    for c in children:
        c.terminate()
    for fn in fns:
        try:
            fn()
        except OSError as e:  # cleanup must not mask the original error
            log.debug(f"cleanup: {e}")


_cancelled: list[str] = []


def install_cancel_handlers(sigs: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM,
                                                      signal.SIGHUP)) -> None:
    """Make SIGINT/SIGTERM/SIGHUP cancel at once, even while a C call blocks the main thread.

    Python runs signal handlers only between bytecodes, so a long libguestfs call would delay a
    cancel by minutes.  A watcher thread reads the signal from the wakeup fd and tears down every
    child at once (which makes the blocking call fail); the main thread then raises Cancelled.
    """
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)

    raised: list[int] = []

    def handler(signum: int, frame: object) -> None:
        # Once: a second signal, or one arriving while this (the main) thread runs a cleanup
        # (its error path), must not interrupt that cleanup; the watcher below still records
        # it.  The watcher's own cleanup, in its thread, must not swallow the main thread's
        # Cancelled, or pure-Python work would never stop.
        if raised or threading.get_ident() in _cleaning_now:
            return
        raised.append(signum)
        raise Cancelled(f"cancelled by {signal.Signals(signum).name}", signum)

    for sig in sigs:
        signal.signal(sig, handler)

    def watch() -> None:
        while True:
            data = os.read(r, 16)
            if not data:
                return
            for b in data:
                if b in sigs and not _cancelled:
                    _cancelled.append(signal.Signals(b).name)
                    cleanup_all()

    threading.Thread(target=watch, name="cancel-watcher", daemon=True).start()


def cancelled() -> str | None:
    """The name of the signal that cancelled this run, if any."""
    return _cancelled[0] if _cancelled else None


def terminate_started_by(threads: set[int | None]) -> None:
    """Terminate the registered children started by these threads (by `threading.get_ident`),
    e.g. the ssh a worker thread waits on, so that the thread can be joined at once."""
    with _lock:
        mine = [c for c in _children if c.thread in threads]
    for c in mine:
        c.terminate()


def live_children() -> list[Child]:
    with _lock:
        return [c for c in _children if c.poll() is None]


def which(prog: str) -> str | None:
    from shutil import which as _which
    return _which(prog)


atexit.register(cleanup_all)
