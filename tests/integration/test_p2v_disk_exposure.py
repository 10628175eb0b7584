"""Who can reach the physical disk on the conversion server (issue 10, DESIGN.md security).

Real sshd on loopback, real nbdkit/ssh -R, the fake virt-v2v holding the disk connected while
we look at the server (`-oo fake-hold`):
- a pyv2v server (`nbd-unix-socket` in --machine-readable) gets the disk on a 0600 unix socket
  inside the 0700 work dir: no TCP listener appears, another local user gets EACCES, the
  conversion reads the disk through the socket (as root and as an unprivileged login);
- a stock server keeps the reference wire (loopback TCP port in physical.xml), which any local
  user can reach (shown here: the reason for the socket), and a server that would publish the
  forward beyond its loopback (GatewayPorts yes) is refused before the conversion starts;
- on the physical machine, either way, the disk is served on a unix socket in a 0700 directory:
  neither the NBD server nor the data ssh listens on TCP (checked in every held run).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import stat
import string
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from p2v_fixtures import Sshd, p2v_children

from pyv2v import nbd
from pyv2v.p2v.conversion import Conversion
from pyv2v.p2v.events import Event, Finished, RemoteLine

PYV2V_TOKENS = ["pyv2v", "nbd-unix-socket"]
HOLD = "Holding the disks"
CONNECT_AS = r"""
import sys, nbd
h = nbd.NBD()
try:
    h.connect_uri(sys.argv[1])
    print("connected", h.get_size())
except nbd.Error as e:
    print("errno", e.errnum, e.string)
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("p2v-exposure") / "disk.img"
    with open(path, "wb") as f:
        f.truncate(16 << 20)
        f.write(os.urandom(1 << 20))
    path.parent.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def other_user() -> Iterator[str]:
    """A throwaway local user of the conversion server (not the one p2v logs in as)."""
    name = "p2vo" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", name], check=True)
    yield name
    subprocess.run(["userdel", "-f", name], check=False, capture_output=True)


def connect_as(user: str, uri: str) -> str:
    r = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", CONNECT_AS, uri],
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
    return False


def sshd_listeners(sshd: Sshd) -> set[str]:
    """TCP listeners ("ADDR:PORT") opened by the sessions of this test sshd (its children)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split()
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        if len(parts) >= 4 and any(_descends(p, sshd.child.pid) for p in pids):
            found.add(parts[3])
    return found


def physical_side(conv: Conversion) -> dict[str, object]:
    """This (the physical) machine's end of each disk while the export is up: the TCP ports
    the NBD server's and the data ssh's own sockets listen on (/proc/PID/fd socket inodes
    matched against /proc/net/tcp{,6}: another test's listener cannot interfere), and the
    local socket's directory mode."""
    conns = list(conv._conns)
    assert conns, "no data connection is up"
    return {"tcp": {p for c in conns for p in nbd.listening_ports(c.server.child.pid)
                    | nbd.listening_ports(c.ssh.pid)},
            "modes": {stat.S_IMODE(os.stat(os.path.dirname(c.server.socket or "/")).st_mode)
                      for c in conns}}


def run(sshd: Sshd, tmp: Path, image: Path, during: Callable[[Conversion], None],
        **kw: object) -> tuple[Finished, list[Event], Conversion]:
    """A p2v run whose fake virt-v2v holds the disk connected while `during` looks around;
    every run also checks that the disk has no TCP listener on the physical machine."""
    cfg = sshd.config(tmp, disks=[str(image)], output_misc=["fake-hold=4"], **kw)
    conv = Conversion(cfg)
    events: list[Event] = []
    seen: list[bool] = []
    local: list[dict[str, object]] = []

    def observe(e: Event) -> None:
        events.append(e)
        if isinstance(e, RemoteLine) and HOLD in e.text and not seen:
            seen.append(True)
            local.append(physical_side(conv))
            during(conv)

    conv.subscribe(observe)
    result = conv.run()
    assert seen or not result.ok, "the fake virt-v2v never held the disk"
    if local:
        assert local[0] == {"tcp": set(), "modes": {0o700}}, local[0]
    return result, events, conv


def login(sshd: Sshd, as_root: bool) -> dict[str, object]:
    if as_root:
        return {}
    assert sshd.password_user and sshd.password
    return {"identity": None, "username": sshd.password_user, "password": sshd.password}


@pytest.mark.parametrize("as_root", [True, False], ids=["root", "unprivileged-login"])
def test_pyv2v_server_gets_the_disk_on_a_private_unix_socket(
        sshd_factory: Callable[..., Sshd], tmp_path: Path, disk: Path, other_user: str,
        as_root: bool) -> None:
    sshd = sshd_factory(extra_tokens=PYV2V_TOKENS, password_user=not as_root)
    before = sshd_listeners(sshd)
    checked: dict[str, object] = {}

    def during(conv: Conversion) -> None:
        rdir = Path(conv.remote_dir or "")
        sock = rdir / "sda.sock"
        checked["dir_mode"] = stat.S_IMODE(rdir.stat().st_mode)
        st = sock.lstat()
        checked["is_socket"] = stat.S_ISSOCK(st.st_mode)
        checked["sock_mode"] = stat.S_IMODE(st.st_mode)
        checked["listeners"] = sshd_listeners(sshd)
        uri = f"nbd+unix:///?socket={sock}"
        checked["other"] = connect_as(other_user, uri)
        checked["owner"] = connect_as(sshd.password_user or "root", uri)

    result, _, conv = run(sshd, tmp_path, disk, during, **login(sshd, as_root))
    assert result.ok, result.message
    rdir = Path(result.remote_dir or "")
    assert checked["dir_mode"] == 0o700 and checked["is_socket"] and checked["sock_mode"] == 0o600
    assert checked["listeners"] == before, "a TCP listener exists for the disk"
    other = str(checked["other"])
    assert other.startswith(f"errno {errno.EACCES} ") and "Permission denied" in other, other
    assert checked["owner"] == f"connected {16 << 20}"  # the socket is live: only for its owner
    physical = (rdir / "physical.xml").read_text()
    assert f'socket="{rdir}/sda.sock"' in physical and ' port="' not in physical
    disks = json.loads((rdir / "fake-v2v-result.json").read_text())["disks"]
    assert disks == [{"socket": f"{rdir}/sda.sock", "size": 16 << 20, "sha256": sha256(disk),
                      "write_refused": True, "read_only": True}]
    assert sshd_listeners(sshd) == before and p2v_children() == []


def test_stock_server_keeps_tcp_on_loopback(sshd_factory: Callable[..., Sshd], tmp_path: Path,
                                            disk: Path, other_user: str) -> None:
    sshd = sshd_factory()  # the fake virt-v2v without our feature token: a stock server
    before = sshd_listeners(sshd)
    checked: dict[str, object] = {}

    def during(conv: Conversion) -> None:
        new = sshd_listeners(sshd) - before
        checked["new"] = new
        port = int(next(iter(new)).rpartition(":")[2]) if new else 0
        checked["other"] = connect_as(other_user, f"nbd://localhost:{port}")

    result, _, _ = run(sshd, tmp_path, disk, during)
    assert result.ok, result.message
    new = checked["new"]
    assert isinstance(new, set) and new, "no TCP forward on the stock server"
    assert {a.rpartition(":")[0] for a in new} <= {"127.0.0.1", "[::1]"}, new
    port = int(next(iter(new)).rpartition(":")[2])
    rdir = Path(result.remote_dir or "")
    assert f'port="{port}"' in (rdir / "physical.xml").read_text()
    # What the socket path prevents: on a stock server any local user reaches the disk.
    assert checked["other"] == f"connected {16 << 20}"
    assert p2v_children() == []


def test_forward_published_beyond_loopback_is_refused(sshd_factory: Callable[..., Sshd],
                                                      tmp_path: Path, disk: Path) -> None:
    sshd = sshd_factory(sshd_config="GatewayPorts yes")
    result, _, _ = run(sshd, tmp_path, disk, lambda conv: None)
    assert not result.ok and result.exit_code is None
    assert "GatewayPorts no" in result.message and "\n" not in result.message
    rdir = Path(result.remote_dir or "")
    assert not (rdir / "status").exists()  # the conversion never started
    assert p2v_children() == []
