"""The physical machine's end of a disk export (issue 10, free-port race): the NBD server
listens on a unix socket in a private directory and both ssh forwards point at that socket —
argv only here; the real servers run in tests/integration/test_nbd_local_exports.py and the
real forwards in test_p2v_disk_exposure.py / test_p2v_conversion.py."""

from __future__ import annotations

import pytest

from pyv2v import nbd, ssh
from pyv2v.errors import V2VError

T = ssh.Target(host="conv.example.com", port=2222, user="admin", known_hosts="/tmp/kh")
LOCAL = "/tmp/pyv2v-nbd-abcd1234/nbd.sock"
REMOTE = "/tmp/virt-p2v-20250101-abcd1234/sda.sock"


def _r(argv: list[str]) -> str:
    return argv[argv.index("-R") + 1]


def test_stock_server_forward_reaches_the_local_socket() -> None:
    argv = ssh.reverse_forward_argv(T, LOCAL)
    assert _r(argv) == f"0:{LOCAL}"  # ssh(1): -R [bind_address:]port:local_socket
    assert "-N" in argv and "ExitOnForwardFailure=yes" in argv
    assert "StrictHostKeyChecking=yes" in argv and argv[-2:] == ["--", T.host]


def test_pyv2v_server_forward_is_socket_to_socket() -> None:
    argv = ssh.reverse_socket_forward_argv(T, REMOTE, LOCAL)
    assert _r(argv) == f"{REMOTE}:{LOCAL}"  # ssh(1): -R remote_socket:local_socket
    assert "-v" in argv and "ExitOnForwardFailure=yes" in argv


def test_a_port_still_means_loopback_tcp() -> None:
    assert _r(ssh.reverse_forward_argv(T, 43021)) == "0:127.0.0.1:43021"
    assert _r(ssh.reverse_socket_forward_argv(T, REMOTE, 43021)) == f"{REMOTE}:127.0.0.1:43021"


def test_a_relative_local_socket_is_refused() -> None:
    with pytest.raises(V2VError, match="absolute path"):
        ssh.reverse_forward_argv(T, "nbd.sock")


def test_servers_listen_on_the_socket_not_a_port() -> None:
    argv = nbd.nbdkit_argv("/dev/sda", 0, unix_socket=LOCAL)
    assert argv[argv.index("-U") + 1] == LOCAL and "-p" not in argv and "-i" not in argv
    assert "-r" in argv and "--exit-with-parent" in argv
    argv = nbd.qemu_nbd_argv("/dev/sda", 0, unix_socket=LOCAL)
    assert argv[argv.index("-k") + 1] == LOCAL and "-p" not in argv and "-b" not in argv
    assert "-r" in argv and argv[-1] == "/dev/sda"


def test_unix_uri() -> None:
    assert nbd.nbd_unix_uri(LOCAL) == f"nbd+unix:///?socket={LOCAL}"
    assert nbd.nbd_unix_uri("/tmp/a b/s") == "nbd+unix:///?socket=/tmp/a%20b/s"


def test_ssh_messages_for_a_local_socket_target() -> None:
    """What OpenSSH 9 prints when the connect side is a path (-2 = PORT_STREAMLOCAL)."""
    up = f"debug1: remote forward success for: listen {REMOTE}:-2, connect {LOCAL}:-2"
    assert ssh.parse_socket_forward(up) == REMOTE
    assert ssh.parse_allocated_port("Allocated port 41235 for remote forward to (null):-2") \
        == 41235


def test_data_connection_error_leaves_out_ssh_chatter() -> None:
    """ssh -v's banner, debug and login lines never reach the one-line data-connection error."""
    import collections
    import io
    import threading
    from types import SimpleNamespace

    from pyv2v.p2v import nbd_export

    stderr = io.StringIO("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024\n"
                         "debug1: Reading configuration data\n"
                         "Authenticated to 127.0.0.1 ([127.0.0.1]:2222) using \"publickey\".\n"
                         "client_loop: send disconnect: Broken pipe\n")
    child = SimpleNamespace(proc=SimpleNamespace(stderr=stderr))
    tail: collections.deque[str] = collections.deque(maxlen=10)
    nbd_export._read_stderr(child, tail, lambda line: None, [], threading.Event())  # type: ignore[arg-type]
    assert list(tail) == ["client_loop: send disconnect: Broken pipe"]
