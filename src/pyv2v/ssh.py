"""OpenSSH client plumbing: argv builders, host-key policy, reverse forwards, error messages.

Public API:
- `Target(host, port, user, identity, known_hosts, hostkey)`: where and how to connect.
  `identity` (a private key file) selects publickey auth, else keyboard-interactive/password
  (the password reaches ssh only through an SSH_ASKPASS helper and a private channel, see
  pyv2v/p2v/askpass.py: never in argv, an environment or a log).
- `ssh_argv(t, command, tty=False)`, `reverse_forward_argv(t, local)`,
  `reverse_socket_forward_argv(t, remote_socket, local)` (`local`: a local unix socket path or
  a port on 127.0.0.1), `scp_argv(t, files, remote_dir)`:
  complete argv lists with the reference options
  (PROTOCOL.md §1) and our host-key options; `quote(argv)` builds a remote command string.
- Host keys are checked against OUR known_hosts file, never accepted silently, and ssh itself
  never records anything: every argv has `StrictHostKeyChecking=yes`.  Settling the key before
  the first connection (trust on first use, pinning) is hostkeys.py's.
- `parse_allocated_port(text)` reads "Allocated port N for remote forward";
  `parse_socket_forward(text)` reads ssh -v's "remote forward success for: listen PATH:-2"
  (a unix-socket forward prints nothing else when it is up) and `forward_failed(text)` its
  refusal ("remote port forwarding failed").
- `explain(stderr, t)` turns ssh's stderr into a one-line user message (unreachable, auth,
  host key…); `guard(argv)` adds a parent-death signal so ssh never outlives its owner;
  `run_retrying_drops` tries again when a busy server dropped the connection before the key
  exchange.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass

from . import log, process
from .errors import V2VError

CONNECT_TIMEOUT = 60
ALLOCATED_RE = re.compile(r"Allocated port (\d+) for remote forward")
SOCKET_FORWARD_RE = re.compile(r"remote forward success for: listen (/\S+):-?\d+, connect ")


def default_known_hosts() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "pyv2v", "known_hosts")


@dataclass(frozen=True)
class Target:
    host: str
    port: int = 22
    user: str = "root"
    identity: str | None = None  # private key file: publickey auth only
    known_hosts: str = ""  # "" = default_known_hosts()
    hostkey: str | None = None  # pinned "SHA256:…" fingerprint
    connect_timeout: int = CONNECT_TIMEOUT
    role: str = "conversion server"  # what the host is to the user, for error messages

    @property
    def known_hosts_file(self) -> str:
        return self.known_hosts or default_known_hosts()

    @property
    def display(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def quote(argv: Sequence[str]) -> str:
    """A remote command line (the server's shell parses it) from an argv list."""
    return shlex.join(argv)


def guard(argv: list[str]) -> list[str]:
    """Prefix `setpriv --pdeathsig TERM` so the child dies with its parent (if available)."""
    if process.which("setpriv"):
        return ["setpriv", "--pdeathsig", "TERM", "--", *argv]
    return argv


def common_options(t: Target) -> list[str]:
    """-o options shared by ssh and scp: reference options plus our host-key policy."""
    opts = ["-F", "none",  # no user/system config: behaviour must not depend on the host
            "-o", f"ConnectTimeout={t.connect_timeout}",
            "-o", "ServerAliveInterval=300", "-o", "ServerAliveCountMax=6",
            "-o", f"UserKnownHostsFile={t.known_hosts_file}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",  # keys are recorded by us, never by ssh
            "-o", "HashKnownHosts=no", "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no",
            "-o", "LogLevel=INFO"]
    if t.identity:
        opts += ["-o", "PreferredAuthentications=publickey", "-o", "IdentitiesOnly=yes",
                 "-o", "BatchMode=yes", "-i", t.identity]
    else:
        opts += ["-o", "PreferredAuthentications=keyboard-interactive,password",
                 "-o", "NumberOfPasswordPrompts=1", "-o", "PubkeyAuthentication=no"]
    return opts


def ssh_argv(t: Target, command: str | None = None, *, tty: bool = False,
             extra: Sequence[str] = ()) -> list[str]:
    argv = ["ssh", "-p", str(t.port), "-l", t.user, *common_options(t)]
    if tty:
        argv.append("-tt")
    argv += [*extra, "--", t.host]
    if command is not None:
        argv.append(command)
    return argv


def _forward_to(local: int | str, local_host: str) -> str:
    """The connect side of -R: a local unix socket path, or HOST:PORT."""
    if isinstance(local, str):
        if not local.startswith("/"):
            raise V2VError(f"internal: a local socket must be an absolute path, not {local!r}")
        return local
    return f"{local_host}:{local}"


def reverse_forward_argv(t: Target, local: int | str,
                         local_host: str = "127.0.0.1") -> list[str]:
    """`ssh -R 0:LOCAL -N`: the server allocates a loopback port that reaches LOCAL here (a
    unix socket path, ssh(1) "-R [bind_address:]port:local_socket", or HOST:PORT)."""
    return ssh_argv(t, extra=["-N", "-R", f"0:{_forward_to(local, local_host)}",
                              "-o", "ExitOnForwardFailure=yes"])


def reverse_socket_forward_argv(t: Target, remote_socket: str, local: int | str,
                                local_host: str = "127.0.0.1") -> list[str]:
    """`ssh -R SOCKET:LOCAL -N -v`: the server listens on the unix socket `remote_socket`
    (created by sshd with StreamLocalBindMask, 0600 by default; never replaced, since sshd's
    StreamLocalBindUnlink defaults to no) and forwards its connections to LOCAL here (a unix
    socket path, ssh(1) "-R remote_socket:local_socket", or HOST:PORT).
    `-v` makes ssh say when the forward is up (see `parse_socket_forward`)."""
    return ssh_argv(t, extra=["-N", "-v", "-R",
                              f"{remote_socket}:{_forward_to(local, local_host)}",
                              "-o", "ExitOnForwardFailure=yes"])


def scp_argv(t: Target, files: Sequence[str], remote_dir: str) -> list[str]:
    """Upload `files` into `remote_dir`, preserving modes (scp speaks sftp)."""
    host = f"[{t.host}]" if ":" in t.host else t.host
    return ["scp", "-p", "-P", str(t.port), *common_options(t), "--", *files,
            f"{t.user}@{host}:{remote_dir}/"]


def parse_allocated_port(text: str) -> int | None:
    m = ALLOCATED_RE.search(text)
    return int(m.group(1)) if m else None


def parse_socket_forward(text: str) -> str | None:
    """The remote socket path once ssh -v reports its unix-socket forward as established."""
    m = SOCKET_FORWARD_RE.search(text)
    return m.group(1) if m else None


def forward_failed(text: str) -> bool:
    """Did the server refuse a remote forward (then ExitOnForwardFailure ends ssh)?"""
    return "remote port forwarding failed" in text or "remote forward failure" in text


# A server busy with many clients drops new connections before the key exchange (sshd's
# MaxStartups, default 10:30:100): the client sees the connection closed before the server's
# banner.  Nothing ran on the server then, so trying again shortly is safe.
PREAUTH_DROP = ("kex_exchange_identification", "Connection closed by remote host",
                "Connection reset by peer")
DROP_RETRIES = (1.0, 2.0, 4.0)  # seconds before each new try


def dropped_before_login(stderr: str) -> bool:
    """stderr of ssh/scp/ssh-keyscan says the server dropped the connection before the key
    exchange (not a refusal, an authentication or a host key failure)."""
    if "Permission denied" in stderr or "Host key verification failed" in stderr:
        return False
    return any(m in stderr for m in PREAUTH_DROP)


def run_retrying_drops(argv: list[str], t: Target, *, timeout: float, failed: int,
                       env: dict[str, str] | None = None,
                       input: str | None = None) -> process.Result:
    """process.run(argv), again after a short wait while it fails with exit `failed` because
    the server dropped the connection before the key exchange (bounded: DROP_RETRIES)."""
    for delay in (*DROP_RETRIES, None):
        r = process.run(argv, timeout=timeout, check=False, env=env, input=input)
        if r.rc != failed or not dropped_before_login(r.err) or delay is None:
            return r
        log.debug(f"{t.host}:{t.port} dropped the connection before the key exchange "
                  f"(busy server?): trying again in {delay:.0f} s")
        time.sleep(delay)
    return r


# ---- errors ----------------------------------------------------------------------------

_UNREACHABLE = ("Connection refused", "No route to host", "Could not resolve hostname",
                "Connection timed out", "Network is unreachable", "Name or service not known",
                "Connection closed by", "Connection reset by", "timed out during banner")


def explain(stderr: str, t: Target) -> str:
    """One line saying why ssh failed, from its stderr."""
    text = stderr.replace("\r", "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()
             and not ln.startswith(("Warning: Permanently added", "@@@@"))]
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        return (f"host key verification failed for {t.host}:{t.port}: the server's key does not "
                f"match the one recorded in {t.known_hosts_file} (possible man-in-the-middle); "
                "if the server really changed, remove its entry there or pin the new key "
                "with p2v.hostkey=SHA256:…")
    if "Permission denied" in text or "Too many authentication failures" in text:
        how = f"key {t.identity}" if t.identity else "password"
        return f"authentication as {t.user} on {t.host}:{t.port} failed ({how} refused)"
    for marker in _UNREACHABLE:
        for ln in lines:
            if marker in ln:
                return f"cannot reach {t.role} {t.host}:{t.port}: {ln}"
    return lines[-1] if lines else "ssh failed without a message"
