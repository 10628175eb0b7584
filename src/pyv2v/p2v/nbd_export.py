"""Data connections (PROTOCOL.md §3): one read-only NBD export + one `ssh -R 0:…` per disk.

`open_data_conn(session, disk)` serves the disk (`sda` → /dev/sda, or an absolute path such
as a `--disk` image) read-only on 127.0.0.1 with nbdkit (or qemu-nbd), then opens
`ssh -R 0:127.0.0.1:PORT -N` and waits for "Allocated port N for remote forward": N is the
port on the server's loopback that reaches the disk, as written into physical.xml.
`DataConn.close()` SIGHUPs the ssh (there is no session to end politely) and stops the server.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .. import log, nbd, process, ssh
from ..errors import V2VError
from .session import Session


def device_path(disk: str) -> str:
    return disk if disk.startswith("/") else "/dev/" + disk


def disk_size(path: str) -> int:
    """Size in bytes of a file or block device (0 if unknown)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


@dataclass
class DataConn:
    disk: str
    server: nbd.NbdServer
    ssh: process.Child
    remote_port: int
    size: int
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=20))

    def alive(self) -> bool:
        return self.ssh.poll() is None and self.server.alive()

    def why_dead(self) -> str:
        if not self.server.alive():
            return f"the NBD server for {self.disk} exited"
        tail = "; ".join(list(self.stderr_tail)[-2:])
        return f"the data connection for {self.disk} closed (ssh exit {self.ssh.poll()})" + \
            (f": {tail}" if tail else "")

    def close(self) -> None:
        if self.ssh.poll() is None:
            self.ssh.signal_group(signal.SIGHUP)
            try:
                self.ssh.wait(3)
            except subprocess.TimeoutExpired:  # terminate() below escalates
                pass
        self.ssh.terminate()
        self.server.stop()


def _read_stderr(child: process.Child, tail: collections.deque[str],
                 port: list[int], ready: threading.Event) -> None:
    stream = child.proc.stderr
    if stream is None:
        ready.set()
        return
    for line in stream:
        line = line.rstrip("\r\n")
        tail.append(line)
        if not port:
            found = ssh.parse_allocated_port(line)
            if found is not None:
                port.append(found)
                ready.set()
        log.debug(f"data ssh: {line}")
    ready.set()  # EOF: ssh exited


def open_data_conn(session: Session, disk: str, server: str = "nbdkit") -> DataConn:
    path = device_path(disk)
    nbd_server = nbd.start_readonly(path, server)
    try:
        argv = ssh.reverse_forward_argv(session.target, nbd_server.port)
        child = session.spawn(argv)
    except BaseException:
        nbd_server.stop()
        raise
    tail: collections.deque[str] = collections.deque(maxlen=20)
    port: list[int] = []
    ready = threading.Event()
    threading.Thread(target=_read_stderr, args=(child, tail, port, ready), daemon=True,
                     name=f"data-ssh-{disk}").start()
    deadline = time.monotonic() + session.target.connect_timeout + 20
    while not ready.wait(0.2) and time.monotonic() < deadline:
        pass
    if not port:
        child.terminate()
        nbd_server.stop()
        what = f"could not open the data connection for {disk}"
        if child.poll() is None and time.monotonic() >= deadline:
            raise V2VError(f"{what}: no port allocated by the server")
        raise V2VError(f"{what}: {ssh.explain(chr(10).join(tail), session.target)}")
    conn = DataConn(disk, nbd_server, child, port[0], disk_size(path))
    conn.stderr_tail = tail
    log.debug(f"data connection for {disk}: local {nbd_server.uri} → server port {port[0]}")
    return conn
