"""The benchmark's slow link (pyv2v_harness.slowlink) is real: from inside its namespace, a
TCP peer on this host's loopback is reached only through the veth (tc tbf 100 Mbit/s) and the
delaying proxy (20 ms RTT).  Measured with real sockets: 20 round trips of one byte (each
>= 20 ms), 20 MiB streamed (received at 100 Mbit/s +-30 %, counted by the proxy), and after
the block the namespace, the veth pair and the proxy are gone, also when the body raised.
Cheap: no conversion, a few seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from pyv2v_harness.slowlink import slow_link

MiB = 1 << 20
PINGS = 20
BULK = 20 * MiB

CLIENT = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtts = []
for _ in range(PINGS):
    t = time.monotonic(); s.sendall(b"p"); assert s.recv(1) == b"p"
    rtts.append(time.monotonic() - t)
s.sendall(b"x" * BULK); s.shutdown(socket.SHUT_WR); assert s.recv(1) == b"k"
print(min(rtts), max(rtts))
""".replace("PINGS", str(PINGS)).replace("BULK", str(BULK))


def sink(listener: socket.socket, result: dict[str, float]) -> None:
    """Echo PINGS single bytes, then time the bulk from its first byte to EOF."""
    conn, _ = listener.accept()
    with conn:
        for _ in range(PINGS):
            conn.sendall(conn.recv(1))
        got, first = 0, 0.0
        while data := conn.recv(1 << 20):
            first = first or time.monotonic()
            got += len(data)
        result["bytes"] = got
        result["seconds"] = time.monotonic() - first
        conn.sendall(b"k")


def gone(ns: str, port: int, host: str) -> bool:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    try:
        socket.create_connection((host, port), timeout=1).close()
        listening = True
    except OSError:
        listening = False
    return ns not in names and ns.replace("pyv2v-sl-", "pvsl") not in links and not listening


def test_slow_link_caps_rate_adds_latency_and_cleans_up() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (ip netns, tc)")
    result: dict[str, float] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        t = threading.Thread(target=sink, args=(listener, result), daemon=True)
        t.start()
        with slow_link(listener.getsockname()[1], rate_mbit=100, rtt_ms=20) as link:
            # the namespace has no other way to this host's loopback
            direct = subprocess.run(link.wrap([sys.executable, "-c", (
                "import socket,sys\n"
                "try: socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\n"
                "except OSError: sys.exit(3)\n"), str(listener.getsockname()[1])]))
            assert direct.returncode == 3
            out = subprocess.run(link.wrap([sys.executable, "-c", CLIENT, link.host,
                                            str(link.port)]),
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            t.join(30)
            counted = link.proxy.up
            ns, host, port = link.ns, link.host, link.port
    rtt_min, rtt_max = (float(x) for x in out.stdout.split())
    mbit = result["bytes"] * 8 / result["seconds"] / 1e6
    print(f"\nRTT {rtt_min * 1e3:.1f}..{rtt_max * 1e3:.1f} ms; {mbit:.1f} Mbit/s; "
          f"proxy counted {counted} bytes up")
    assert rtt_min >= 0.020, rtt_min
    assert rtt_max < 1.0, rtt_max  # a loaded 2-core host stretches some round trips
    assert result["bytes"] == BULK
    assert 70 <= mbit <= 130, mbit
    assert counted == BULK + PINGS
    assert gone(ns, port, host)


def test_slow_link_cleans_up_after_a_failure() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (ip netns, tc)")
    with pytest.raises(RuntimeError), slow_link(9, rate_mbit=100, rtt_ms=20) as link:
        ns, host, port = link.ns, link.host, link.port
        sleeper = subprocess.Popen(link.wrap(["sleep", "600"]))
        raise RuntimeError("the body failed")
    assert sleeper.wait(10) == -9  # killed with the namespace, not left behind
    assert gone(ns, port, host)
