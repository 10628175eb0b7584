"""The disk on the conversion server (issue 10): unix-socket forwards for pyv2v servers, and the
loopback-only check of the TCP forwards a stock server gets — argv, ssh's messages, the socket
names, /proc/net/tcp{,6} parsing and the GatewayPorts refusal (no network; the real sshd runs
in tests/integration/test_p2v_disk_exposure.py)."""

from __future__ import annotations

import pytest

from pyv2v import ssh
from pyv2v.errors import V2VError
from pyv2v.p2v import nbd_export
from pyv2v.v2v import cli as v2v_cli

T = ssh.Target(host="conv.example.com", port=2222, user="admin", known_hosts="/tmp/kh")
RDIR = "/tmp/virt-p2v-20250101-abcd1234"

# /proc/net/tcp and tcp6 as Linux prints them (header lines included).
PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:C351 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:C352 0100007F:E82A 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0A00020F:C353 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000001000000:C350 00000000000000000000000000000000:0000 0A 0:0
   1: 00000000000000000000000000000000:C351 00000000000000000000000000000000:0000 0A 0:0
   2: 0000000000000000FFFF00000100007F:C354 00000000000000000000000000000000:0000 0A 0:0
"""


def test_socket_forward_argv() -> None:
    argv = ssh.reverse_socket_forward_argv(T, f"{RDIR}/sda.sock", 43021)
    i = argv.index("-R")
    assert argv[i + 1] == f"{RDIR}/sda.sock:127.0.0.1:43021"
    assert "-N" in argv and "-v" in argv and "ExitOnForwardFailure=yes" in argv
    assert "StrictHostKeyChecking=yes" in argv
    assert argv[-1] == T.host and argv[-2] == "--"


def test_ssh_messages() -> None:
    ok = (f"debug1: remote forward success for: listen {RDIR}/sda.sock:-2, "
          "connect 127.0.0.1:43021")
    assert ssh.parse_socket_forward(ok) == f"{RDIR}/sda.sock"
    assert ssh.parse_socket_forward(ok.replace("success", "failure")) is None
    assert ssh.parse_socket_forward("Allocated port 41235 for remote forward to x:1") is None
    assert ssh.forward_failed(f"Error: remote port forwarding failed for listen path {RDIR}/s")
    assert not ssh.forward_failed(ok)


def test_socket_names() -> None:
    assert nbd_export.socket_path(RDIR, "sda", 0) == f"{RDIR}/sda.sock"
    assert nbd_export.socket_path(RDIR, "cciss/c0d0", 1) == f"{RDIR}/cciss_c0d0.sock"
    assert nbd_export.socket_path(RDIR, "/var/tmp/disk image.img", 1) == f"{RDIR}/sdb.sock"
    long = nbd_export.socket_path("/tmp/" + "x" * 60, "nvme" + "0" * 50, 2)
    assert long.endswith("/disk2.sock") and len(long) <= nbd_export.MAX_SOCKET_PATH


def test_feature_token_only_from_our_v2v() -> None:
    assert nbd_export.SOCKET_FEATURE in v2v_cli.FEATURES


def test_tcp_listeners() -> None:
    got = nbd_export.tcp_listeners(PROC_TCP + PROC_TCP6)
    assert got[0xC350] == {"127.0.0.1", "::1"}
    assert got[0xC351] == {"0.0.0.0", "::"}
    assert 0xC352 not in got  # an established connection, not a listener
    assert got[0xC353] == {"15.2.0.10"}
    assert got[0xC354] == {"::ffff:7f00:1"}
    assert nbd_export.tcp_listeners("garbage\n 0: zz:zz 0 0A\n") == {}


def test_loopback_only_check() -> None:
    text = PROC_TCP + PROC_TCP6
    nbd_export.check_loopback_only(text, [0xC350, 0xC354], "conv")  # loopback only: fine
    for port in (0xC351, 0xC353):
        with pytest.raises(V2VError, match="GatewayPorts no") as e:
            nbd_export.check_loopback_only(text, [0xC350, port], "conv")
        assert str(port) in str(e.value) and "\n" not in str(e.value)


def test_loopback_check_unknown_port_warns(capsys: pytest.CaptureFixture[str]) -> None:
    nbd_export.check_loopback_only(PROC_TCP, [12345], "conv")
    assert "cannot check who may connect to port 12345" in capsys.readouterr().err
