"""NBD servers and URIs: read-only nbdkit/qemu-nbd exports on a free localhost port.

Public API (small on purpose; p2v and the v2v server both use it):

- `start_nbdkit_readonly(path) -> NbdServer` runs `nbdkit -r --exit-with-parent -f file
  file=PATH` on 127.0.0.1:PORT; `start_qemu_nbd_readonly(path, fmt)` runs `qemu-nbd -r`;
  `start_readonly(path, server="nbdkit"|"qemu-nbd")` picks one.  Each returns only once the
  server answers the NBD handshake; the child is registered with process.py for cleanup.
- `NbdServer(child, port, uri, path)`: `.stop()` ends it (SIGTERM, then SIGKILL), `.alive()`,
  `.bytes_read()` (bytes the server has read from its source, from /proc/PID/io).
- `nbd_uri(host, port, export="")` / `parse_nbd_uri(uri)`; `free_port()`; `wait_for_nbd()`.
"""

from __future__ import annotations

import collections
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import process
from .errors import V2VError

LOCALHOST = "127.0.0.1"
NBD_MAGIC = b"NBDMAGIC"
IHAVEOPT = b"IHAVEOPT"
NBD_OPT_ABORT = 2


def nbd_uri(host: str, port: int, export: str = "") -> str:
    """nbd://HOST:PORT[/EXPORT] (IPv6 literals bracketed)."""
    h = f"[{host}]" if ":" in host else host
    return f"nbd://{h}:{port}" + (f"/{export}" if export else "")


def parse_nbd_uri(uri: str) -> tuple[str, int, str]:
    """(host, port, export) of an nbd:// URI; the port defaults to 10809."""
    parts = urlsplit(uri)
    if parts.scheme != "nbd" or not parts.hostname:
        raise V2VError(f"not an nbd:// URI: {uri}")
    return parts.hostname, parts.port or 10809, parts.path.lstrip("/")


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (callers retry if they lose the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _answers(host: str, port: int) -> bool:
    """Is an NBD server answering?  Greeting, then a polite NBD_OPT_ABORT (no error logged)."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            greeting = _recv_exact(s, 18)  # NBDMAGIC, IHAVEOPT, handshake flags
            if greeting[:8] != NBD_MAGIC:
                return False
            if greeting[8:16] == IHAVEOPT:  # newstyle: client flags, then abort
                s.sendall(struct.pack(">I", 3) + IHAVEOPT + struct.pack(">II", NBD_OPT_ABORT, 0))
                _recv_exact(s, 20)  # the server's ack (or nothing): either is fine
            return True
    except OSError:
        return False


def wait_for_nbd(host: str, port: int, child: process.Child | None = None,
                 timeout: float = 30.0) -> None:
    """Wait until an NBD server on host:port sends its greeting (or `child` dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            err = child.proc.stderr.read() if child.proc.stderr else ""
            last = (err or "").strip().splitlines()[-1:] or ["no message"]
            raise V2VError(f"{child.argv[0]} exited before serving {host}:{port}: {last[0]}")
        if _answers(host, port):
            return
        time.sleep(0.05)
    raise V2VError(f"NBD server on {host}:{port} did not answer within {timeout:g} s")


@dataclass
class NbdServer:
    """A running read-only NBD export of `path` on LOCALHOST:`port`."""

    child: process.Child
    port: int
    uri: str
    path: str
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=20))

    def alive(self) -> bool:
        return self.child.poll() is None

    def stop(self) -> None:
        self.child.terminate()

    def bytes_read(self) -> int | None:
        """Bytes read from the source so far (rchar of the server), or None."""
        try:
            with open(f"/proc/{self.child.pid}/io") as f:
                for line in f:
                    if line.startswith("rchar:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None


def nbdkit_argv(path: str, port: int, host: str = LOCALHOST) -> list[str]:
    return ["nbdkit", "-r", "-f", "--exit-with-parent", "-i", host, "-p", str(port),
            "file", f"file={path}"]


def qemu_nbd_argv(path: str, port: int, fmt: str = "raw", host: str = LOCALHOST) -> list[str]:
    # qemu-nbd has no --exit-with-parent: setpriv gives it a parent-death signal.
    guard = ["setpriv", "--pdeathsig", "TERM", "--"] if process.which("setpriv") else []
    return guard + ["qemu-nbd", "-r", "-t", "-f", fmt, "-b", host, "-p", str(port),
                    "--shared=16", path]


def _drain(child: process.Child, tail: collections.deque[str]) -> None:
    """Keep reading the server's stderr so it never blocks; remember the last lines."""
    stream = child.proc.stderr
    if stream is None:
        return
    for line in stream:
        tail.append(line.rstrip("\n"))


def _start(argv_for_port: Callable[[int], list[str]], path: str, tries: int = 5,
           timeout: float = 30.0) -> NbdServer:
    if not os.path.exists(path):
        raise V2VError(f"cannot export {path}: no such file or device")
    if not os.access(path, os.R_OK):
        raise V2VError(f"cannot export {path}: permission denied")
    last: V2VError | None = None
    for _ in range(tries):
        port = free_port()
        argv = argv_for_port(port)
        child = process.spawn(argv, stdout=None)
        try:
            wait_for_nbd(LOCALHOST, port, child, timeout)
        except V2VError as e:  # most likely lost the race for the port: try another
            child.terminate()
            last = e
            continue
        server = NbdServer(child, port, nbd_uri("localhost", port), path)
        threading.Thread(target=_drain, args=(child, server.stderr_tail), daemon=True).start()
        return server
    raise V2VError(f"cannot start an NBD server for {path}: {last}")


def start_nbdkit_readonly(path: str, timeout: float = 30.0) -> NbdServer:
    """Serve `path` (file or block device) read-only with nbdkit's file plugin."""
    return _start(lambda port: nbdkit_argv(path, port), path, timeout=timeout)


def start_qemu_nbd_readonly(path: str, fmt: str = "raw", timeout: float = 30.0) -> NbdServer:
    """Serve `path` read-only with qemu-nbd (any format qemu reads)."""
    return _start(lambda port: qemu_nbd_argv(path, port, fmt), path, timeout=timeout)


def start_readonly(path: str, server: str = "nbdkit", timeout: float = 30.0) -> NbdServer:
    """Read-only export with the named server ("nbdkit" or "qemu-nbd")."""
    if server == "nbdkit":
        return start_nbdkit_readonly(path, timeout)
    if server == "qemu-nbd":
        return start_qemu_nbd_readonly(path, timeout=timeout)
    raise V2VError(f"unknown NBD server {server!r} (nbdkit or qemu-nbd)")
