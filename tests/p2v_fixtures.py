"""pytest plugin for p2v: private sshd conversion servers on 127.0.0.1, a fake virt-v2v.

`p2v_sshd` (session): an sshd on a random free port with its own host key, a user key for root
(PermitRootLogin, AllowTcpForwarding, the sftp subsystem), a dedicated local user with a random
password (created with useradd/chpasswd, deleted at teardown) and a fake `virt-v2v` first on
the sessions' PATH (SetEnv).  `p2v_sshd_stock`: the same with Debian's real virt-v2v and the
TCG libguestfs environment for its sessions.  `sshd_factory(**kw)` starts more (other PATH,
another fake version) for one test.  All are started through pyv2v.process and torn down.

The fake virt-v2v answers --version/--machine-readable like 2.2.0; as a conversion it records
its argv, reads every NBD disk of physical.xml through the tunnel (sha256, size, whether a write
is refused) into fake-v2v-result.json, prints virt-v2v-like stage lines, and obeys
`-oo fake-sleep=SECS` (sleeps with a child process: cancel tests), `-oo fake-hold=SECS` (keeps
the disks connected that long, printing "Holding the disks") and `-oo fake-exit=N`; it reads TCP
and unix-socket NBD disks.  `start_sshd(extra_tokens=["nbd-unix-socket"])` makes it claim more
features (a pyv2v-like server); `sshd_config=` lines are appended to the sshd's config.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import string
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from proc_helpers import pgrep

from pyv2v import accel, hostkeys, process
from pyv2v.p2v.config import Config
from pyv2v_harness import loopback

FAKE_V2V = r'''#!/usr/bin/python3
import hashlib, json, os, subprocess, sys, time
import xml.etree.ElementTree as ET
VERSION = os.environ.get("FAKE_V2V_VERSION", "2.2.0")
TOKENS = """virt-v2v libguestfs-rewrite vcenter-https xen-ssh vddk colours-option
vdsm-compat-option in-place io/oo mac-option bandwidth-option input:disk input:libvirt
input:libvirtxml input:ova input:vmx output:glance output:json output:libvirt output:local
output:null output:openstack output:qemu output:rhv output:rhv-upload output:vdsm
convert:linux convert:windows ovf:rhvv4 ovf:rhvexp""".split()
TOKENS += [t for t in os.environ.get("FAKE_V2V_EXTRA_TOKENS", "").split(",") if t]
args = sys.argv[1:]
if args == ["--version"]:
    print("virt-v2v " + VERSION); sys.exit(0)
if args == ["--machine-readable"]:
    print("\n".join(TOKENS)); sys.exit(0)
t0 = time.monotonic()
def stage(msg):
    print("[%6.1f] %s" % (time.monotonic() - t0, msg), flush=True)
opts = dict(a.split("=", 1) for i, a in enumerate(args) if i and args[i - 1] == "-oo")
json.dump(args, open("fake-v2v-argv.json", "w"))
print("fake virt-v2v: debug output goes to stderr", file=sys.stderr)
stage("Setting up the source: -i libvirtxml " + args[-1])
import nbd
disks, handles = [], []
for d in ET.parse(args[-1]).getroot().iter("disk"):
    host = d.find("source/host")
    if d.get("device") != "disk" or host is None:
        continue
    h = nbd.NBD()
    if host.get("transport") == "unix":
        where = {"socket": host.get("socket")}
        h.connect_uri("nbd+unix:///?socket=" + host.get("socket"))
    else:
        where = {"port": int(host.get("port"))}
        h.connect_uri("nbd://%s:%s" % (host.get("name"), host.get("port")))
    size, sha, off = h.get_size(), hashlib.sha256(), 0
    while off < size:
        n = min(1 << 22, size - off)
        sha.update(h.pread(n, off)); off += n
    try:
        h.pwrite(b"x" * 512, 0); refused = False
    except nbd.Error:
        refused = True
    disks.append({**where, "size": size, "sha256": sha.hexdigest(),
                  "write_refused": refused, "read_only": bool(h.is_read_only())})
    handles.append(h)
if "fake-hold" in opts:  # keep the disks connected a while (tests look at the server meanwhile)
    stage("Holding the disks")
    time.sleep(float(opts["fake-hold"]))
for h in handles:
    h.shutdown()
stage("Copying disk 1/%d" % len(disks))
json.dump({"disks": disks}, open("fake-v2v-result.json", "w"))
if "fake-sleep" in opts:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)",
                              os.path.dirname(os.path.abspath(__file__)) + "/child"])
    time.sleep(float(opts["fake-sleep"]))
stage("Finishing off")
sys.exit(int(opts.get("fake-exit", "0")))
'''


@dataclass
class Sshd:
    host: str
    port: int
    dir: Path
    user_key: Path
    host_key: tuple[str, str]  # (type, base64 blob)
    fake_bin: Path | None
    child: process.Child
    password_user: str | None = None
    password: str | None = None
    log: Path = field(default_factory=Path)

    @property
    def fingerprint(self) -> str:
        return hostkeys.fingerprint(self.host_key[1])

    def config(self, tmp: Path, **kw: object) -> Config:
        """A p2v Config for this server: root with the user key, a fresh known_hosts in tmp."""
        cfg = Config(server=self.host, port=self.port, username="root",
                     identity=f"file://{self.user_key}", known_hosts=str(tmp / "known_hosts"),
                     guestname="p2vtest", cores=1, memory=1 << 30)
        for k, v in kw.items():
            setattr(cfg, k, v)
        return cfg

    def procs(self, pattern: str) -> list[str]:
        """Live processes matching `pattern` (pgrep -af), other xdist workers' left out."""
        return pgrep(pattern)


def start_sshd(*, fake_version: str | None = "2.2.0", path: list[str] | None = None,
               env: dict[str, str] | None = None, password_user: bool = False,
               extra_tokens: list[str] | None = None, sshd_config: str = "") -> Sshd:
    if os.geteuid() != 0:
        pytest.skip("the private sshd needs root")
    dirs = list(path) if path is not None else list(loopback.DEFAULT_PATH)
    fake_root = Path(tempfile.mkdtemp(prefix="p2v-fakebin-"))
    fake_root.chmod(0o755)
    fake_bin = None
    if fake_version is not None:
        fake_bin = fake_root / "fakebin"
        fake_bin.mkdir(mode=0o755)
        (fake_bin / "virt-v2v").write_text(FAKE_V2V)
        (fake_bin / "virt-v2v").chmod(0o755)
        dirs.insert(0, str(fake_bin))
    setenv = dict(env or {})
    if fake_version is not None:
        setenv["FAKE_V2V_VERSION"] = fake_version
    if extra_tokens:
        setenv["FAKE_V2V_EXTRA_TOKENS"] = ",".join(extra_tokens)
    srv = loopback.start(path=dirs, env=setenv, sshd_config=sshd_config)
    user = password = None
    if password_user:
        user = "p2vt" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
        password = secrets.token_urlsafe(12)
        subprocess.run(["useradd", "-M", "-d", str(srv.dir), "-s", "/bin/bash", user], check=True)
        subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)
    s = Sshd(srv.host, srv.port, srv.dir, srv.user_key, srv.host_key, fake_bin, srv.child, user,
             password, srv.log)
    s.server = srv  # type: ignore[attr-defined]
    s.fake_root = fake_root  # type: ignore[attr-defined]
    return s


def stop_sshd(s: Sshd) -> None:
    s.server.stop()  # type: ignore[attr-defined]
    if s.password_user:
        subprocess.run(["userdel", "-f", s.password_user], check=False,
                       capture_output=True)
    shutil.rmtree(s.fake_root, ignore_errors=True)  # type: ignore[attr-defined]


def p2v_children() -> list[process.Child]:
    """Live registered children other than the test sshds: must be [] after any p2v step."""
    return [c for c in process.live_children() if not c.argv[0].endswith("/sshd")]


def ssh_free_port() -> int:
    """A loopback port where nothing listens and nothing will: below the kernel's ephemeral
    range, so no bind(0)/connect — another test's sshd or nbdkit on the other xdist worker —
    takes it meanwhile (a port from `loopback.free_port()` could be)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(max(1024, low - 10000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no unused port below the ephemeral range")


@pytest.fixture(scope="session")
def p2v_sshd() -> Iterator[Sshd]:
    s = start_sshd(password_user=True)
    yield s
    stop_sshd(s)


@pytest.fixture(scope="session")
def p2v_sshd_stock() -> Iterator[Sshd]:
    """Conversion server with Debian's stock virt-v2v; libguestfs set up for this machine."""
    if not shutil.which("virt-v2v"):
        pytest.skip("Debian's virt-v2v is not installed")
    accel.apply_to_environ()  # conftest did this already; the sessions need the same
    env = {"LIBGUESTFS_BACKEND": "direct"}
    if os.environ.get("LIBGUESTFS_BACKEND_SETTINGS"):
        env["LIBGUESTFS_BACKEND_SETTINGS"] = os.environ["LIBGUESTFS_BACKEND_SETTINGS"]
    s = start_sshd(fake_version=None, env=env)
    yield s
    stop_sshd(s)


@pytest.fixture
def sshd_factory() -> Iterator[Callable[..., Sshd]]:
    started: list[Sshd] = []

    def make(**kw: object) -> Sshd:
        s = start_sshd(**kw)  # type: ignore[arg-type]
        started.append(s)
        return s

    yield make
    for s in started:
        stop_sshd(s)
