"""A slow network link for the transport benchmark (issue 16): a network namespace joined to
this host by a veth pair shaped with `tc tbf`, plus a delaying, byte-counting TCP proxy.

`netem` is not in this kernel, so latency comes from `DelayProxy`: every chunk it reads from
one side is written to the other `delay` seconds later (half the wanted RTT each way), without
holding up the chunks behind it, so throughput is not reduced.  The proxy also counts the bytes
it forwards each way: put in front of the conversion server's sshd, that is what crossed the
ssh tunnel (control + data, encrypted, as on a real network), the same count for any client.

    with slow_link(sshd_port, rate_mbit=100, rtt_ms=20) as link:
        subprocess.run(link.wrap(["p2v", "--server", link.host, "--port", str(link.port), …]))
        link.proxy.up    # bytes client → server

The client runs inside the namespace (`link.wrap(argv)` = `ip netns exec NS argv`) and reaches
the proxy at the veth's host address; the proxy forwards to 127.0.0.1:target.  Both veth ends
carry a tbf qdisc at `rate_mbit`.  On exit (also on failure) every process left in the
namespace is killed, the namespace and the veth pair are deleted and the proxy is stopped.
`counting_proxy(port)` is the proxy alone on 127.0.0.1, no delay (bytes through the tunnel on
loopback).  Needs root (ip netns, tc).
"""

from __future__ import annotations

import os
import queue
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CHUNK = 64 << 10
_EOF = b""


class DelayProxy:
    """TCP proxy listen_host:port → 127.0.0.1:target, each direction delayed by `delay` s."""

    def __init__(self, target: int, listen_host: str = "127.0.0.1", delay: float = 0.0,
                 target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target)
        self.delay = delay
        self.up = 0    # bytes client → target
        self.down = 0  # bytes target → client
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server((listen_host, 0))
        self.host = listen_host
        self.port = int(self._listener.getsockname()[1])
        self._spawn(self._accept)

    def _spawn(self, fn: object, *args: object) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self.connections += 1
                self._socks += [client, server]
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipe(client, server, "up")
            self._pipe(server, client, "down")

    def _pipe(self, src: socket.socket, dst: socket.socket, counter: str) -> None:
        q: queue.Queue[tuple[float, bytes]] = queue.Queue(maxsize=1024)

        def reader() -> None:
            while True:
                try:
                    data = src.recv(CHUNK)
                except OSError:
                    data = _EOF
                q.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def writer() -> None:
            broken = False
            while True:
                due, data = q.get()
                if broken:  # drain until the reader's EOF
                    if not data:
                        return
                    continue
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                try:
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    broken = True  # the other side is gone: make the reader stop too
                    try:
                        src.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    continue
                with self._lock:
                    setattr(self, counter, getattr(self, counter) + len(data))

        self._spawn(reader)
        self._spawn(writer)

    def stop(self) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(5)


@dataclass
class SlowLink:
    ns: str
    host: str      # the proxy's address, reachable from inside the namespace
    port: int
    proxy: DelayProxy

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]


def _ip(*args: str, ns: str | None = None, check: bool = True) -> None:
    argv = ["ip", *args] if ns is None else ["ip", "netns", "exec", ns, "ip", *args]
    subprocess.run(argv, check=check, capture_output=True, timeout=30)


def _tc_tbf(dev: str, rate_mbit: float, ns: str | None = None) -> None:
    # burst: at least one timer tick of data at this rate (HZ 250 → rate/250), 64 KiB minimum
    burst = max(int(rate_mbit * 1e6 / 8 / 250), 64 << 10)
    argv = ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{rate_mbit}mbit",
            "burst", str(burst), "latency", "20ms"]
    if ns is not None:
        argv = ["ip", "netns", "exec", ns, *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def _kill_namespace_processes(ns: str) -> None:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                         timeout=30).stdout
    for pid in (int(p) for p in out.split()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def slow_link(target: int, rate_mbit: float = 100, rtt_ms: float = 20) -> Iterator[SlowLink]:
    """A namespace whose only way out is a `rate_mbit` veth to a proxy → 127.0.0.1:target that
    adds `rtt_ms` of round-trip time."""
    if os.geteuid() != 0:
        raise PermissionError("the slow link needs root (ip netns, tc)")
    tag = secrets.token_hex(3)
    ns, host_if, ns_if = f"pyv2v-sl-{tag}", f"pvsl{tag}h", f"pvsl{tag}n"
    octet = int(tag[:2], 16) % 250 + 1
    host_ip, ns_ip = f"10.217.{octet}.1", f"10.217.{octet}.2"
    proxy: DelayProxy | None = None
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("addr", "add", f"{ns_ip}/30", "dev", ns_if, ns=ns)
        _ip("link", "set", ns_if, "up", ns=ns)
        _ip("link", "set", "lo", "up", ns=ns)  # the client's own NBD server listens there
        _tc_tbf(host_if, rate_mbit)
        _tc_tbf(ns_if, rate_mbit, ns=ns)
        proxy = DelayProxy(target, listen_host=host_ip, delay=rtt_ms / 2000)
        yield SlowLink(ns, host_ip, proxy.port, proxy)
    finally:
        if proxy is not None:
            proxy.stop()
        if os.path.exists(f"/run/netns/{ns}"):
            _kill_namespace_processes(ns)
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", host_if, check=False)  # gone with the namespace, normally


@contextmanager
def counting_proxy(target: int) -> Iterator[DelayProxy]:
    """A proxy on 127.0.0.1 → 127.0.0.1:target that only counts (no delay, no shaping)."""
    proxy = DelayProxy(target)
    try:
        yield proxy
    finally:
        proxy.stop()
