"""The p2v side of the ssh transport: one `Session` per conversion server.

A Session turns the configuration into an `ssh.Target` (fetching a `p2v.identity` URL into a
private 0600 file, or serving the password through `Askpass`), applies the host-key policy
(pinned: checked before any login; otherwise trust on first use: scanned and recorded before
the first login, the new fingerprint reported once by `new_host_keys()`), and runs remote
commands, scp uploads and long-running ssh children with clear one-line errors.  Every child
goes through process.py; long-running ones are guarded by a parent-death signal so ssh never
outlives p2v.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.client import HTTPMessage
from typing import IO
from urllib.parse import unquote, urlsplit

from .. import hostkeys, log, process, ssh
from ..errors import V2VError
from .askpass import Askpass
from .config import Config
from .redact import redact

SSH_FAILED = 255


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another https:// URL (a private key never travels in clear)."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() != "https":
            raise V2VError(f"p2v.identity: refusing the redirect from {redact(req.full_url)} to "
                           f"{redact(newurl)} (a private key is fetched over https:// only)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_identity(url: str, dest_dir: str) -> str:
    """Copy/download the private key at `url` (file://, https://, or a path; never http://)."""
    parts = urlsplit(url)
    shown = redact(url)
    dest = os.path.join(dest_dir, "id")
    try:
        if parts.scheme in ("", "file"):
            path = unquote(parts.path) if parts.scheme else url
            with open(path, "rb") as f:
                data = f.read()
        elif parts.scheme == "https":
            opener = urllib.request.build_opener(_HttpsOnlyRedirects)
            with opener.open(url, timeout=60) as resp:
                data = resp.read()
        elif parts.scheme == "http":
            raise V2VError(f"p2v.identity: refusing to fetch a private key over plain http:// "
                           f"({shown}): use https:// or file://")
        else:
            raise V2VError(f"p2v.identity: unsupported URL scheme {parts.scheme!r} "
                           "(use file:// or https://)")
    except (OSError, urllib.error.URLError) as e:
        raise V2VError(f"cannot fetch the ssh identity {shown}: {redact(str(e))}") from None
    if b"PRIVATE KEY" not in data:
        raise V2VError(f"the ssh identity {shown} is not a private key file")
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return dest


class Session:
    """How to reach and authenticate to the conversion server."""

    def __init__(self, cfg: Config) -> None:
        if not cfg.server:
            raise V2VError("no conversion server given (p2v.server=… or --server)")
        self.sudo = cfg.sudo
        self._dir = tempfile.mkdtemp(prefix="p2v-session-")
        self.askpass: Askpass | None = None
        try:
            identity = fetch_identity(cfg.identity, self._dir) if cfg.identity else None
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        if identity is None:
            self.askpass = Askpass(cfg.password)
        self.target = cfg.ssh_target(identity)
        self._known_before = hostkeys.known_keys(self.target)
        self._host_key_checked = False
        self._reported = False
        process.on_cleanup(self.close)

    # ---- host keys -----------------------------------------------------------------
    def check_host_key(self) -> None:
        """Before any login (idempotent): verify and record a pinned key, or record the
        server's keys on first use (ssh then runs with StrictHostKeyChecking=yes)."""
        if not self._host_key_checked:
            if self.target.hostkey:
                hostkeys.pin_host_key(self.target)
            else:
                hostkeys.trust_on_first_use(self.target)
        self._host_key_checked = True

    def new_host_keys(self) -> list[str]:
        """Fingerprints trusted on first use by the connections so far (reported once)."""
        if self._reported or self.target.hostkey or self._known_before:
            return []
        keys = hostkeys.known_keys(self.target)
        if not keys:
            return []
        self._reported = True
        return [f"{kind} {hostkeys.fingerprint(blob)}" for kind, blob in keys]

    # ---- running things -----------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {"LC_ALL": "C"}
        if self.askpass is not None:
            env.update(self.askpass.env())
        return env

    def _fail(self, what: str, stderr: str) -> V2VError:
        return V2VError(f"{what}: {ssh.explain(stderr, self.target)}")

    def run(self, command: Sequence[str] | str, *, timeout: float = 120,
            what: str = "ssh", input: str | None = None) -> process.Result:
        """Run a remote command (`input` on its stdin); ssh's own failures raise, the
        command's exit code is returned."""
        self.check_host_key()
        cmd = command if isinstance(command, str) else ssh.quote(command)
        r = ssh.run_retrying_drops(ssh.ssh_argv(self.target, cmd), self.target,
                                   timeout=timeout, failed=SSH_FAILED, env=self.env(),
                                   input=input)
        if r.rc == SSH_FAILED:
            raise self._fail(what, r.err)
        return r

    def scp(self, files: Sequence[str], remote_dir: str, timeout: float = 300) -> None:
        self.check_host_key()
        r = ssh.run_retrying_drops(ssh.scp_argv(self.target, files, remote_dir), self.target,
                                   timeout=timeout, failed=1, env=self.env())
        if r.rc != 0:
            raise self._fail(f"scp to {remote_dir}", r.err)

    def spawn(self, argv: list[str], *, stdin: int | None = subprocess.DEVNULL) -> process.Child:
        """A long-running ssh child (stdout/stderr piped), guarded by a parent-death signal."""
        self.check_host_key()
        return process.spawn(ssh.guard(argv), env=self.env(), stdin=stdin)

    def close(self) -> None:
        if self.askpass is not None:
            self.askpass.close()
            self.askpass = None
        shutil.rmtree(self._dir, ignore_errors=True)
        process.cancel_cleanup(self.close)
        log.debug("ssh session closed")
