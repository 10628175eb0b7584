"""A busy conversion server drops new ssh connections before the key exchange (sshd's
MaxStartups: three p2v clients starting at once tripped the default 10:30:100 in CI).  p2v's
ssh-keyscan and its ssh/scp commands try again, a bounded number of times.

Real sshd on loopback with `MaxStartups 1:100:1` and one connection held open before the key
exchange: every other new connection is dropped until it is released.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pyv2v import hostkeys, ssh
from pyv2v.errors import V2VError
from pyv2v_harness import loopback


@pytest.fixture(scope="module")
def busy() -> Iterator[loopback.Server]:
    srv = loopback.start(sshd_config="MaxStartups 1:100:1")
    try:
        yield srv
    finally:
        srv.stop()


def hold(port: int, seconds: float) -> threading.Thread:
    """Occupy the server's one pre-authentication slot for `seconds`."""
    deadline = time.monotonic() + 10
    while True:  # the slot may still be taken by a connection the server is closing
        s = socket.create_connection(("127.0.0.1", port))
        if s.recv(8).startswith(b"SSH-"):
            break
        s.close()
        assert time.monotonic() < deadline, "the server's pre-authentication slot stays busy"
        time.sleep(0.2)

    def release() -> None:
        time.sleep(seconds)
        s.close()

    th = threading.Thread(target=release, daemon=True)
    th.start()
    return th


def target(srv: loopback.Server, tmp: str) -> ssh.Target:
    return ssh.Target(host="127.0.0.1", port=srv.port, identity=str(srv.user_key),
                      known_hosts=f"{tmp}/known_hosts")


def test_keyscan_and_ssh_retry_while_the_server_drops(busy: loopback.Server, tmp_path) -> None:
    t = target(busy, str(tmp_path))
    th = hold(busy.port, 2.5)
    t0 = time.monotonic()
    keys = hostkeys.keyscan(t)  # dropped at first; the slot frees after 2.5 s
    assert keys and time.monotonic() - t0 >= 2.5
    th.join()
    hostkeys.record_keys(t, keys)
    th = hold(busy.port, 2.5)
    r = ssh.run_retrying_drops(ssh.ssh_argv(t, "echo ok"), t, timeout=60, failed=255)
    th.join()
    assert r.rc == 0 and r.out.strip() == "ok", r.err


def test_retries_are_bounded(busy: loopback.Server, tmp_path) -> None:
    t = target(busy, str(tmp_path))
    th = hold(busy.port, sum(ssh.DROP_RETRIES) + 5)
    t0 = time.monotonic()
    with pytest.raises(V2VError, match="cannot reach conversion server .* to read its host key"):
        hostkeys.keyscan(t)
    assert time.monotonic() - t0 < sum(ssh.DROP_RETRIES) + 5
    th.join()
