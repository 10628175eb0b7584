"""Data connections (PROTOCOL.md §3): one read-only NBD export + one `ssh -R` per disk.

`open_data_conn(session, disk)` vets the disk (`sda` → /dev/sda, or an absolute path such as a
`--disk` image: hardware.check_disk, stat first), serves it read-only with nbdkit (or qemu-nbd)
on a unix socket in a private 0700 directory of this machine (nbd.start_readonly(unix=True)):
no TCP port to race for and nothing another local user of the physical machine can reach.
Then it opens the reverse forward to that socket and waits until the server end is up:
- stock servers (the reference wire): `ssh -R 0:LOCAL_SOCKET -N` and "Allocated port N for
  remote forward": N is the port on the server's loopback that reaches the disk.  Every local
  user of the server can connect to it, so p2v checks that it is at least loopback-only
  (`check_loopback_only`: the server's /proc/net/tcp{,6}, read in the same ssh command that
  makes the work dir; a `GatewayPorts yes` server would publish the disk to the network);
- pyv2v servers (`nbd-unix-socket` in `virt-v2v --machine-readable`): `remote_socket=` a path
  inside the 0700 work dir (`socket_path()`), `ssh -R PATH:LOCAL_SOCKET -N -v`, up when ssh
  reports "remote forward success"; sshd creates the socket 0600 (StreamLocalBindMask), so only
  the connecting user reaches the disk and nothing listens on TCP on either machine.
`DataConn.close()` SIGHUPs the ssh (there is no session to end politely) and stops the server.
"""

from __future__ import annotations

import collections
import ipaddress
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .. import log, nbd, process, ssh
from ..errors import V2VError
from .hardware import check_disk, device_path
from .physical_xml import target_dev
from .session import Session
from .wrapper import mkdir_command

SOCKET_FEATURE = "nbd-unix-socket"  # the server's -i libvirtxml reads NBD unix-socket disks
LISTENERS_COMMAND = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true"
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the NUL


def socket_path(remote_dir: str, disk: str, index: int) -> str:
    """The server-side unix socket of disk `index`: REMOTE_DIR/sda.sock (the target name)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", target_dev(disk, index))
    path = f"{remote_dir}/{name}.sock"
    return path if len(path) <= MAX_SOCKET_PATH else f"{remote_dir}/disk{index}.sock"


@dataclass
class DataConn:
    disk: str
    server: nbd.NbdServer
    ssh: process.Child
    remote_port: int  # the server's loopback port (TCP), 0 with a unix socket
    size: int
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=20))
    remote_socket: str | None = None
    compress: bool = False  # ssh -C (p2v --compress)

    @property
    def endpoint(self) -> int | str:
        """What physical.xml names: the socket path, else the port on the server's loopback."""
        return self.remote_socket or self.remote_port

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


# What `ssh -v` prints besides errors: its version banner, debug lines, the login and the summary.
SSH_CHATTER = ("debug1: ", "OpenSSH_", "Authenticated to ", "Transferred: ", "Bytes per second")


def _read_stderr(child: process.Child, tail: collections.deque[str],
                 up: Callable[[str], object], found: list[object],
                 ready: threading.Event) -> None:
    stream = child.proc.stderr
    if stream is None:
        ready.set()
        return
    for line in stream:
        line = line.rstrip("\r\n")
        if not found and (value := up(line)) is not None:
            found.append(value)
            ready.set()
        if line.startswith(SSH_CHATTER):  # ssh -v banner and chatter: not an error message
            continue
        tail.append(line)
        log.debug(f"data ssh: {line}")
    ready.set()  # EOF: ssh exited


def open_data_conn(session: Session, disk: str, server: str = "nbdkit",
                   remote_socket: str | None = None, compress: bool = False) -> DataConn:
    path = device_path(disk)
    size = check_disk(disk)
    nbd_server = nbd.start_readonly(path, server, unix=True)
    local = nbd_server.socket or nbd_server.port
    up: Callable[[str], object]
    try:
        if remote_socket is None:
            argv = ssh.reverse_forward_argv(session.target, local)
            up = ssh.parse_allocated_port
        else:
            argv = ssh.reverse_socket_forward_argv(session.target, remote_socket, local)

            def up(line: str) -> object:
                return remote_socket if ssh.parse_socket_forward(line) == remote_socket else None
        if compress:
            argv.insert(1, "-C")
        child = session.spawn(argv)
    except BaseException:
        nbd_server.stop()
        raise
    tail: collections.deque[str] = collections.deque(maxlen=20)
    found: list[object] = []
    ready = threading.Event()
    threading.Thread(target=_read_stderr, args=(child, tail, up, found, ready), daemon=True,
                     name=f"data-ssh-{disk}").start()
    deadline = time.monotonic() + session.target.connect_timeout + 20
    while not ready.wait(0.2) and time.monotonic() < deadline:
        pass
    if not found:
        child.terminate()
        nbd_server.stop()
        what = f"could not open the data connection for {disk}"
        text = "\n".join(tail)
        if child.poll() is None and time.monotonic() >= deadline:
            raise V2VError(f"{what}: no forward set up by the server")
        if remote_socket is not None and ssh.forward_failed(text):
            raise V2VError(f"{what}: the server refused to forward the unix socket "
                           f"{remote_socket} (its sshd needs AllowStreamLocalForwarding yes "
                           "and AllowTcpForwarding yes or remote)")
        raise V2VError(f"{what}: {ssh.explain(text, session.target)}")
    port = found[0] if isinstance(found[0], int) else 0
    conn = DataConn(disk, nbd_server, child, port, size, tail, remote_socket, compress)
    log.debug(f"data connection for {disk}: local {nbd_server.uri} → server {conn.endpoint}")
    return conn


# ---- the stock (TCP) path: is the server's end of the tunnel loopback-only? -------------

def _proc_net_address(hexaddr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp{,6} addresses: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hexaddr)
    fixed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(fixed)


def tcp_listeners(text: str) -> dict[int, set[str]]:
    """Listening TCP sockets in /proc/net/tcp{,6} text: port → local addresses."""
    found: dict[int, set[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[3] != "0A" or ":" not in parts[1]:  # 0A = LISTEN
            continue
        addr, _, port = parts[1].partition(":")
        try:
            ip = _proc_net_address(addr)
            found.setdefault(int(port, 16), set()).add(str(ip))
        except ValueError:
            continue
    return found


def _loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def check_loopback_only(text: str, ports: Iterable[int], where: str) -> None:
    """Refuse a forward the server binds beyond its loopback (sshd `GatewayPorts yes`):
    the whole disk would be readable, unauthenticated, from the network."""
    listeners = tcp_listeners(text)
    for port in ports:
        addrs = listeners.get(port)
        if not addrs:
            log.warning(f"cannot check who may connect to port {port} on {where} "
                        "(not in its /proc/net/tcp): assuming sshd's default GatewayPorts no")
            continue
        exposed = sorted(a for a in addrs if not _loopback(a))
        if exposed:
            raise V2VError(f"the conversion server {where} publishes this machine's disk on "
                           f"{', '.join(exposed)} port {port}, not only on its loopback: set "
                           "GatewayPorts no in its sshd_config (refusing to expose the disk to "
                           "the network)")


def make_remote_dir(s: Session, rdir: str, tcp_ports: list[int] | None = None) -> None:
    """Create the private work dir; with TCP forwards, check in the same ssh command that the
    server listens on them on its loopback only."""
    cmd = mkdir_command(rdir)
    if tcp_ports:
        cmd += f" && {{ {LISTENERS_COMMAND}; }}"
    r = s.run(cmd, what="control connection")
    if r.rc != 0:
        raise V2VError(f"cannot create {rdir} on the conversion server: {r.err.strip()}")
    if tcp_ports:
        check_loopback_only(r.out, tcp_ports, s.target.host)
