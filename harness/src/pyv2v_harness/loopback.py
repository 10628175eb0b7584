"""A private conversion server on 127.0.0.1: an sshd of our own for the demo, bench and tests.

`start(path=…, env=…)` runs `/usr/sbin/sshd -D` on a free loopback port with its own host key,
a user key for root, the sftp subsystem, TCP forwarding (for p2v's `ssh -R` data connections)
and the given PATH/environment for its sessions — login shells included: the sessions get a
HOME of their own whose .bash_profile restores that PATH after /etc/profile resets it (the stock
virt-p2v runs virt-v2v from a login shell).  `start_conversion_server(bindir)` is the usual
set-up: `virt-v2v` on the PATH is our `v2v`, libguestfs uses this host's working accelerator.
`Server.stop()` ends it and removes its directory and the remote work dirs its sessions made.
The sshd is spawned through process.py (no orphans).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyv2v import accel, hostkeys, process
from pyv2v.errors import V2VError

DEFAULT_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]


@dataclass
class Server:
    host: str
    port: int
    dir: Path
    user_key: Path
    host_key: tuple[str, str]  # (type, base64 blob)
    child: process.Child
    log: Path = field(default_factory=Path)

    @property
    def fingerprint(self) -> str:
        return hostkeys.fingerprint(self.host_key[1])

    def stop(self) -> None:
        self.child.terminate()
        for rdir in Path("/tmp").glob("virt-p2v-*"):
            try:
                if f"PYV2V_LOOPBACK={self.dir}\n" in (rdir / "environment").read_text():
                    shutil.rmtree(rdir, ignore_errors=True)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def keygen(path: Path, comment: str = "pyv2v-loopback") -> tuple[str, str]:
    process.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    kind, blob = path.with_suffix(".pub").read_text().split()[:2]
    return kind, blob


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_banner(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(8).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise V2VError(f"the loopback sshd on port {port} did not start")


def start(*, path: list[str] | None = None, env: dict[str, str] | None = None,
          sshd_config: str = "") -> Server:
    """Start the server; `path` is the sessions' PATH (first match wins for `virt-v2v`);
    `sshd_config` lines are appended (e.g. "GatewayPorts yes")."""
    if os.geteuid() != 0:
        raise V2VError("the loopback conversion server needs root (sshd)")
    d = Path(tempfile.mkdtemp(prefix="pyv2v-sshd-"))
    d.chmod(0o755)
    host_key = keygen(d / "host_key")
    user_key = d / "user_key"
    (d / "authorized_keys").write_text(" ".join(keygen(user_key)) + "\n")
    search = ":".join(path or DEFAULT_PATH)
    home = d / "home"
    home.mkdir(mode=0o755)
    (home / ".bash_profile").write_text(f"PATH={search}\nexport PATH\n")
    setenv = {"PATH": search, "LC_ALL": "C", "PYV2V_LOOPBACK": str(d), "HOME": str(home),
              **(env or {})}
    for _ in range(5):  # a port found free may be taken before sshd binds it: try another
        port = free_port()
        child, log = _spawn_sshd(d, port, setenv, sshd_config)
        try:
            _wait_listening(child, log, port)
        except V2VError:
            child.terminate()
            if "Address already in use" in log.read_text(errors="replace"):
                continue
            raise
        return Server("127.0.0.1", port, d, user_key, host_key, child, log)
    raise V2VError("the loopback sshd found no free port")


def _wait_listening(child: process.Child, log: Path, port: int, timeout: float = 15) -> None:
    """Until *our* sshd listens (its log says so): a banner on the port alone could come from
    another server that took the port (a concurrent test)."""
    want = f"Server listening on 127.0.0.1 port {port}."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        if want in log.read_text(errors="replace"):
            wait_banner(port, max(deadline - time.monotonic(), 1))
            return
        time.sleep(0.05)
    raise V2VError(f"the loopback sshd on port {port} did not start: "
                   f"{log.read_text(errors='replace').strip()[-300:]}")


def _spawn_sshd(d: Path, port: int, setenv: dict[str, str], sshd_config: str
                ) -> tuple[process.Child, Path]:
    (d / "sshd_config").write_text(f"""ListenAddress 127.0.0.1
Port {port}
HostKey {d}/host_key
AuthorizedKeysFile {d}/authorized_keys
PidFile none
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
AllowTcpForwarding yes
PermitTTY yes
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
SetEnv {' '.join(f'{k}={v}' for k, v in setenv.items())}
{sshd_config}
""")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = d / "sshd.log"
    with open(log, "w") as f:
        child = process.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                              stdout=f.fileno(), stderr=process.STDOUT)
    return child, log


def start_conversion_server(bindir: Path, env: dict[str, str] | None = None) -> Server:
    """A loopback server whose `virt-v2v` is our `v2v`, with libguestfs set up for this host
    (`env`: more for its sessions, e.g. the fleet's PYV2V_FLEET_BROKER)."""
    env = {"LIBGUESTFS_BACKEND": "direct", **accel.libguestfs_env(), **(env or {})}
    return start(path=[str(v2v_bin_dir(bindir))] + DEFAULT_PATH, env=env)


def v2v_bin_dir(base: Path) -> Path:
    """A directory holding `virt-v2v` → this installation's `v2v` (for the server's PATH)."""
    import sys

    base.mkdir(parents=True, exist_ok=True)
    link = base / "virt-v2v"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path(sys.executable).with_name("v2v"))
    return base
