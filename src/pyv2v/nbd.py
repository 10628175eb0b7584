"""NBD servers and URIs: read-only nbdkit/qemu-nbd exports on a private unix socket or a port.

Public API (small on purpose; p2v and the v2v server both use it):

- `start_nbdkit_readonly(path, unix=False) -> NbdServer` runs `nbdkit -r --exit-with-parent -f
  file file=PATH`; `start_qemu_nbd_readonly(path, fmt, unix=False)` runs `qemu-nbd -r`;
  `start_readonly(path, server="nbdkit"|"qemu-nbd", unix=False)` picks one.  Each returns only
  once the server answers the NBD handshake; the child is registered with process.py.
- `unix=True` (what p2v uses for physical disks): the server listens on `DIR/nbd.sock` in a
  fresh 0700 directory (`nbdkit -U`, `qemu-nbd -k`): no port to race for, and no other local
  user can connect; the directory goes away with `.stop()`.
- Otherwise on 127.0.0.1:PORT: a port that was free a moment ago can be taken by another
  process before the server binds it, so the export is accepted only once the port is
  listened on by the server's own sockets (`listening_ports(pid)`: /proc/PID/fd socket inodes
  matched against /proc/net/tcp{,6}), never because *someone* answers there.
- `NbdServer(child, port, uri, path, socket)`: `.stop()` ends it (SIGTERM, then SIGKILL),
  `.alive()`, `.bytes_read()` (bytes the server has read from its source, /proc/PID/io).
- `nbd_uri(host, port, export="")` / `nbd_unix_uri(socket)` / `parse_nbd_uri(uri)`;
  `free_port()`; `wait_for_nbd()`; `listening_ports(pid)`.
"""

from __future__ import annotations

import collections
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

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


def nbd_unix_uri(path: str) -> str:
    """nbd+unix:///?socket=PATH (the form libnbd, nbdcopy and qemu read)."""
    return f"nbd+unix:///?socket={quote(path, safe='/')}"


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


def _connect(host: str, port: int) -> socket.socket:
    """A TCP connection, or (port 0) one to the unix socket `host`."""
    if port:
        return socket.create_connection((host, port), timeout=2)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(host)
    except OSError:
        s.close()
        raise
    return s


def _answers(host: str, port: int) -> bool:
    """Is an NBD server answering (port 0: on the unix socket `host`)?  Greeting, then a polite
    NBD_OPT_ABORT (no error logged)."""
    try:
        with _connect(host, port) as s:
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


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process `pid` holds open (from /proc/PID/fd)."""
    found: set[str] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def listening_ports(pid: int) -> set[int]:
    """TCP ports (IPv4 and IPv6) on which process `pid`'s own sockets listen."""
    inodes = _socket_inodes(pid)
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) > 9 and parts[3] == "0A" and parts[9] in inodes:  # LISTEN
                        ports.add(int(parts[1].rpartition(":")[2], 16))
        except OSError:
            continue
    return ports


def wait_for_nbd(host: str, port: int, child: process.Child | None = None,
                 timeout: float = 30.0) -> None:
    """Wait until an NBD server on host:port (port 0: the unix socket `host`) sends its
    greeting, or `child` dies.  With `child` and a TCP port, the port must be listened on by
    the child's own sockets first: another process that took the port must not pass."""
    where = f"{host}:{port}" if port else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            err = child.proc.stderr.read() if child.proc.stderr else ""
            last = (err or "").strip().splitlines()[-1:] or ["no message"]
            raise V2VError(f"{child.argv[0]} exited before serving {where}: {last[0]}")
        ours = child is None or not port or port in listening_ports(child.pid)
        if ours and _answers(host, port):
            return
        time.sleep(0.05)
    raise V2VError(f"NBD server on {where} did not answer within {timeout:g} s")


@dataclass
class NbdServer:
    """A running read-only NBD export of `path` on LOCALHOST:`port`, or (port 0) on the unix
    socket `socket` inside its private directory."""

    child: process.Child
    port: int
    uri: str
    path: str
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=20))
    socket: str | None = None

    def alive(self) -> bool:
        return self.child.poll() is None

    def stop(self) -> None:
        self.child.terminate()
        if self.socket:
            shutil.rmtree(os.path.dirname(self.socket), ignore_errors=True)

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


def nbdkit_argv(path: str, port: int, host: str = LOCALHOST,
                unix_socket: str | None = None) -> list[str]:
    where = ["-U", unix_socket] if unix_socket else ["-i", host, "-p", str(port)]
    return ["nbdkit", "-r", "-f", "--exit-with-parent", *where, "file", f"file={path}"]


def qemu_nbd_argv(path: str, port: int, fmt: str = "raw", host: str = LOCALHOST,
                  unix_socket: str | None = None) -> list[str]:
    # qemu-nbd has no --exit-with-parent: setpriv gives it a parent-death signal.
    guard = ["setpriv", "--pdeathsig", "TERM", "--"] if process.which("setpriv") else []
    where = ["-k", unix_socket] if unix_socket else ["-b", host, "-p", str(port)]
    return guard + ["qemu-nbd", "-r", "-t", "-f", fmt, *where, "--shared=16", path]


def _drain(child: process.Child, tail: collections.deque[str]) -> None:
    """Keep reading the server's stderr so it never blocks; remember the last lines."""
    stream = child.proc.stderr
    if stream is None:
        return
    for line in stream:
        tail.append(line.rstrip("\n"))


def _start_unix(argv_for: Callable[[str], list[str]], path: str,
                timeout: float) -> NbdServer:
    """Serve on DIR/nbd.sock, DIR a fresh 0700 directory (mkdtemp): nothing to race for."""
    sockdir = tempfile.mkdtemp(prefix="pyv2v-nbd-")
    sock = os.path.join(sockdir, "nbd.sock")
    try:
        child = process.spawn(argv_for(sock), stdout=None)
    except BaseException:
        shutil.rmtree(sockdir, ignore_errors=True)
        raise
    server = NbdServer(child, 0, nbd_unix_uri(sock), path, socket=sock)
    try:
        wait_for_nbd(sock, 0, child, timeout)
    except BaseException as e:
        server.stop()
        if isinstance(e, V2VError):
            raise V2VError(f"cannot start an NBD server for {path}: {e}") from None
        raise
    threading.Thread(target=_drain, args=(child, server.stderr_tail), daemon=True).start()
    return server


def _start(argv_for_port: Callable[[int], list[str]], path: str, tries: int = 5,
           timeout: float = 30.0, unix: Callable[[str], list[str]] | None = None) -> NbdServer:
    if not os.path.exists(path):
        raise V2VError(f"cannot export {path}: no such file or device")
    if not os.access(path, os.R_OK):
        raise V2VError(f"cannot export {path}: permission denied")
    if unix is not None:
        return _start_unix(unix, path, timeout)
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


def start_nbdkit_readonly(path: str, timeout: float = 30.0, *, unix: bool = False) -> NbdServer:
    """Serve `path` (file or block device) read-only with nbdkit's file plugin."""
    return _start(lambda port: nbdkit_argv(path, port), path, timeout=timeout,
                  unix=(lambda sock: nbdkit_argv(path, 0, unix_socket=sock)) if unix else None)


def start_qemu_nbd_readonly(path: str, fmt: str = "raw", timeout: float = 30.0, *,
                            unix: bool = False) -> NbdServer:
    """Serve `path` read-only with qemu-nbd (any format qemu reads)."""
    return _start(lambda port: qemu_nbd_argv(path, port, fmt), path, timeout=timeout,
                  unix=(lambda sock: qemu_nbd_argv(path, 0, fmt, unix_socket=sock))
                  if unix else None)


def start_readonly(path: str, server: str = "nbdkit", timeout: float = 30.0, *,
                   unix: bool = False) -> NbdServer:
    """Read-only export with the named server ("nbdkit" or "qemu-nbd")."""
    if server == "nbdkit":
        return start_nbdkit_readonly(path, timeout, unix=unix)
    if server == "qemu-nbd":
        return start_qemu_nbd_readonly(path, timeout=timeout, unix=unix)
    raise V2VError(f"unknown NBD server {server!r} (nbdkit or qemu-nbd)")
