"""Disks that are files on another host, read over ssh: shared by `-i vmx -it ssh` (vmx_ssh.py)
and `-i libvirt -ic qemu+ssh://…` (libvirt_ssh.py).

- `identity(given, what)`: the private key to log in with (given, else ~/.ssh/id_ed25519,
  id_ecdsa or id_rsa); authentication is by key only.
- `settle_host_key(t)`: pyv2v's host-key policy (ssh.py) before anything connects: the key is
  recorded in pyv2v's known_hosts on first use with its fingerprint shown; a recorded key that
  no longer matches is then refused by every client (ssh, nbdkit, libvirt's libssh).
- `serve(t, path, sockdir, i, what)`: nbdkit's ssh plugin (sftp) serving the remote `path`
  read-only on a private unix socket, host key verified against the same known_hosts; returns
  its ``nbd+unix://`` URI.  The disk is never copied first: the pipeline's overlay reads it.
"""

from __future__ import annotations

import os
import socket
import time

from ... import hostkeys, log, process, ssh
from ...errors import V2VError

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


def identity(given: str | None, what: str) -> str:
    key = given or next((k for k in (os.path.expanduser(f"~/.ssh/{n}") for n in DEFAULT_KEYS)
                         if os.path.exists(k)), None)
    if not key:
        raise V2VError(f"{what}: no ssh key (give one with -io ssh-identity=FILE)")
    return key


def settle_host_key(t: ssh.Target) -> None:
    for keytype, blob in hostkeys.trust_on_first_use(t):
        log.message(f"Recorded the host key of {t.host}:{t.port} on first use: {keytype} "
                    f"{hostkeys.fingerprint(blob)}")


def serve(t: ssh.Target, path: str, sockdir: str, i: int, what: str) -> str:
    """nbdkit's ssh plugin serving remote `path` read-only on a private unix socket."""
    sock = os.path.join(sockdir, f"disk{i}.sock")
    argv = ["nbdkit", "-r", "-f", "--exit-with-parent", "-U", sock, "ssh",
            f"host={t.host}", f"port={t.port}", f"user={t.user}", f"path={path}",
            f"identity={t.identity}", f"known-hosts={t.known_hosts_file}",
            "verify-remote-host=true"]
    child = process.spawn(argv, stdout=None)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.poll() is not None:
            err = child.proc.stderr.read() if child.proc.stderr else ""
            last = (str(err).strip().splitlines() or ["exited"])[-1]
            raise V2VError(f"{what}: cannot serve {path} from {t.display}: {last}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
                return f"nbd+unix:///?socket={sock}"
        except OSError:
            time.sleep(0.1)
    child.terminate()
    raise V2VError(f"{what}: nbdkit did not start serving {path}")
