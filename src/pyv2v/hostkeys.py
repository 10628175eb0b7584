"""Host keys of ssh servers, settled before the first connection (ssh itself never records
anything: every argv has `StrictHostKeyChecking=yes`, see ssh.py).

Unpinned, `trust_on_first_use(t)` scans the server (ssh-keyscan, one key type at a time, trying
again while a busy server drops the connection) if nothing is recorded for it, records the keys
(the directory is created 0700, the file replaced atomically through an exclusive 0600 temp
file) and checks that they really are recorded, else fails; a changed key is then refused by
ssh.  `t.hostkey="SHA256:…"` pins it: `pin_host_key` scans the server, refuses a mismatch, and
records only the pinned key.  `known_keys(t)` lists recorded keys; `fingerprint(blob)` is
ssh-keygen's SHA256 form.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import time
from collections.abc import Sequence

from . import log, process
from .errors import V2VError
from .ssh import DROP_RETRIES, Target, dropped_before_login, explain


def fingerprint(blob_b64: str) -> str:
    """SHA256:… fingerprint of a base64 public key blob (as `ssh-keygen -l` prints it)."""
    digest = hashlib.sha256(base64.b64decode(blob_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def parse_known_hosts(text: str, host: str, port: int) -> list[tuple[str, str]]:
    """(key type, base64 blob) of the plain known_hosts entries for host:port."""
    want = host_pattern(host, port)
    keys = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith(("#", "@")) and want in parts[0].split(","):
            keys.append((parts[1], parts[2]))
    return keys


def known_keys(t: Target) -> list[tuple[str, str]]:
    try:
        with open(t.known_hosts_file) as f:
            return parse_known_hosts(f.read(), t.host, t.port)
    except OSError:
        return []


# Host key types asked for, one at a time: a plain `ssh-keyscan` opens a connection per type at
# once, which a busy server's MaxStartups drops (three p2v clients = 15 simultaneous
# pre-authentication connections, past sshd's default of 10).
KEYSCAN_TYPES = ("ed25519", "ecdsa", "rsa")


def _keyscan_type(t: Target, kind: str, timeout: int) -> tuple[list[tuple[str, str]], str]:
    for delay in (*DROP_RETRIES, None):
        r = process.run(["ssh-keyscan", "-T", str(timeout), "-t", kind, "-p", str(t.port),
                         "--", t.host], timeout=timeout + 20, check=False)
        keys = [(p[1], p[2]) for p in (ln.split() for ln in r.out.splitlines()
                                       if not ln.startswith("#")) if len(p) >= 3]
        if keys or delay is None or not dropped_before_login(r.err):
            return keys, r.err
        log.debug(f"{t.host}:{t.port} dropped ssh-keyscan before the key exchange (busy "
                  f"server?): trying again in {delay:.0f} s")
        time.sleep(delay)
    return [], ""


def keyscan(t: Target, timeout: int = 10) -> list[tuple[str, str]]:
    """The host keys the server offers right now (ssh-keyscan, one key type at a time)."""
    keys: list[tuple[str, str]] = []
    err = ""
    for kind in KEYSCAN_TYPES:
        found, e = _keyscan_type(t, kind, timeout)
        keys += found
        err = err if found else (e or err)
        if not found and any(ln.strip() and not ln.startswith("#") for ln in e.splitlines()):
            break  # refused, unreachable, or still dropped after retries: not "type not offered"
    if not keys:
        raise V2VError(f"cannot reach {t.role} {t.host}:{t.port} to read its host "
                       f"key: {explain(err, t)}")
    return keys


def record_keys(t: Target, keys: Sequence[tuple[str, str]], replace: bool = True) -> None:
    """Write `keys` for t's host into our known_hosts (dropping its old entries)."""
    path = t.known_hosts_file
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        pattern = host_pattern(t.host, t.port)
        if replace:
            lines = [ln for ln in lines
                     if not (ln.split()[:1] and pattern in ln.split()[0].split(","))]
        lines += [f"{pattern} {kind} {blob}" for kind, blob in keys]
        # mkstemp: O_CREAT|O_EXCL, mode 0600, unpredictable name (never follows a planted link)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".known_hosts.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise V2VError(f"cannot record the host key of {t.host}:{t.port} in {path}: "
                       f"{e.strerror or e}") from None


def trust_on_first_use(t: Target) -> list[tuple[str, str]]:
    """Unpinned: record the server's keys if none are recorded; return the new ones (or [])."""
    if known_keys(t):
        return []
    offered = keyscan(t)
    record_keys(t, offered)
    recorded = known_keys(t)
    if not set(offered) <= set(recorded):
        raise V2VError(f"the host key of {t.host}:{t.port} could not be recorded in "
                       f"{t.known_hosts_file}: refusing to connect")
    log.debug(f"trusting the host key of {t.host}:{t.port} on first use: "
              + ", ".join(f"{k} {fingerprint(b)}" for k, b in recorded))
    return recorded


def pin_host_key(t: Target) -> str:
    """Check the server's key against the pin in `t.hostkey`; record it; return its type."""
    if not t.hostkey:
        raise ValueError("pin_host_key needs a pinned fingerprint")
    want = t.hostkey if t.hostkey.startswith("SHA256:") else "SHA256:" + t.hostkey
    offered = keyscan(t)
    for kind, blob in offered:
        if fingerprint(blob) == want.rstrip("="):
            record_keys(t, [(kind, blob)])
            log.debug(f"host key of {t.host}:{t.port} matches the pinned {want} ({kind})")
            return kind
    seen = ", ".join(f"{k} {fingerprint(b)}" for k, b in offered)
    raise V2VError(f"host key of {t.host}:{t.port} does not match the pinned fingerprint "
                   f"{want} (the server offered {seen}): refusing to connect")
