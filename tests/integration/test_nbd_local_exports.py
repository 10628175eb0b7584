"""Real nbdkit/qemu-nbd exports (pyv2v.nbd), no sshd (issue 10, free-port race):

- `unix=True` serves on a socket in a fresh 0700 directory: no TCP listener of the server's
  own (its /proc/PID/fd socket inodes against /proc/net/tcp{,6}), readable through the socket,
  read-only, and the directory is gone after stop();
- the TCP mode no longer trusts whoever answers on the port it picked: a decoy NBD server that
  takes the port first is not mistaken for ours (the export retries on another port and the
  port it returns is listened on by its own child).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import nbd as libnbd
import pytest

from pyv2v import nbd


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(4 << 20)
        f.write(b"pyv2v" * 100)
    return path


@pytest.mark.parametrize("server", ["nbdkit", "qemu-nbd"])
def test_unix_export_has_no_tcp_listener(image: Path, server: str) -> None:
    srv = nbd.start_readonly(str(image), server, unix=True)
    try:
        sock = srv.socket or ""
        assert srv.port == 0 and srv.uri == nbd.nbd_unix_uri(sock)
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
        assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
        assert nbd.listening_ports(srv.child.pid) == set()
        h = libnbd.NBD()
        h.connect_uri(srv.uri)
        assert h.get_size() == 4 << 20 and h.is_read_only()
        assert h.pread(10, 0) == b"pyv2vpyv2v"
        h.shutdown()
    finally:
        srv.stop()
    assert not os.path.exists(os.path.dirname(sock))


@pytest.mark.parametrize("server", ["nbdkit", "qemu-nbd"])
def test_tcp_export_is_seen_among_its_own_listeners(image: Path, server: str) -> None:
    """The check the unix test relies on can see a listener (so it can fail)."""
    srv = nbd.start_readonly(str(image), server)
    try:
        assert srv.port and srv.port in nbd.listening_ports(srv.child.pid)
    finally:
        srv.stop()


@pytest.fixture
def decoy(tmp_path: Path) -> Iterator[nbd.NbdServer]:
    """Another process's NBD server on a port (a different image: a wrong disk)."""
    other = tmp_path / "other.img"
    with open(other, "wb") as f:
        f.truncate(1 << 20)
    srv = nbd.start_nbdkit_readonly(str(other))
    yield srv
    srv.stop()


def test_tcp_export_does_not_mistake_a_decoy_for_itself(
        image: Path, decoy: nbd.NbdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    real_free_port = nbd.free_port
    offered: list[int] = []

    def free_port(host: str = nbd.LOCALHOST) -> int:  # the race, lost on the first try
        port = decoy.port if not offered else real_free_port(host)
        offered.append(port)
        return port

    monkeypatch.setattr(nbd, "free_port", free_port)
    srv = nbd.start_nbdkit_readonly(str(image))
    try:
        assert offered[0] == decoy.port and len(offered) >= 2
        assert srv.port != decoy.port and srv.port in nbd.listening_ports(srv.child.pid)
        h = libnbd.NBD()
        h.connect_uri(srv.uri)
        assert h.get_size() == 4 << 20  # our image, not the decoy's 1 MiB
        h.shutdown()
    finally:
        srv.stop()
