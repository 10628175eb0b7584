"""The p2v engine: what every p2v front end drives, and the owner of every process p2v starts.

`Engine` is the protocol a UI holds (the Textual app in p2v/tui/, tests pass a fake);
`RealEngine` implements it for both front ends — kernel mode (cli.py, text events) and the
console UI: host keys (our known_hosts, ssh-keyscan), the test connection, conversions
(conversion.py), p2v.pre/post/fail hooks and the power actions of --iso mode.  It keeps ONE ssh
`Session` (session.py: fetched identity or askpass) per server, shared by the test connection
and the run; the session is replaced when the server or the credentials change and closed by
`close()` (process cleanup closes it at exit too).  Every method may block and is meant for a
worker thread, except `ConversionLike.cancel()`, which is safe from any thread or a signal
handler.  Power actions are argv lists given to the constructor so tests can make them harmless.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

from .. import hostkeys, log, process
from ..errors import V2VError
from .config import Config, command_argv
from .conversion import Conversion
from .events import Finished, Observer
from .hardware import Hardware
from .remote import ServerInfo
from .session import Session

POWER_ACTIONS: dict[str, list[str]] = {"reboot": ["reboot"], "poweroff": ["poweroff"]}
HostKeyFp = tuple[str, str]  # (key type, "SHA256:…")


class ConversionLike(Protocol):
    def subscribe(self, fn: Observer) -> None: ...
    def run(self) -> Finished: ...
    def cancel(self) -> None: ...


class Engine(Protocol):
    def recorded_keys(self, cfg: Config) -> list[HostKeyFp]: ...
    def scan_keys(self, cfg: Config) -> list[HostKeyFp]: ...
    def test_connection(self, cfg: Config, observer: Observer) -> ServerInfo: ...
    def conversion(self, cfg: Config, hw: Hardware | None) -> ConversionLike: ...
    def power(self, action: str) -> None: ...


def preferred(keys: Sequence[HostKeyFp]) -> HostKeyFp:
    """The key to pin when the operator accepts: ed25519 if offered, else the first."""
    return next((k for k in keys if k[0] == "ssh-ed25519"), keys[0])


def session_key(cfg: Config) -> tuple[object, ...]:
    """The settings a Session is built from: a change in any of them needs a new session."""
    return (cfg.ssh_target(), cfg.password, cfg.identity, cfg.sudo)


class RealEngine:
    def __init__(self, actions: Mapping[str, Sequence[str]] | None = None) -> None:
        self.actions = {k: list(v) for k, v in (actions or POWER_ACTIONS).items()}
        self.sessions_opened = 0
        self._lock = threading.Lock()
        self._session: Session | None = None
        self._key: tuple[object, ...] | None = None

    # ---- the ssh session ---------------------------------------------------------------
    def session(self, cfg: Config) -> Session:
        """The session for `cfg`'s server and credentials (opened on first use, then reused)."""
        key = session_key(cfg)
        with self._lock:
            if self._session is not None and self._key == key:
                return self._session
            self._close_session()
            self._session = Session(cfg)
            self._key = key
            self.sessions_opened += 1
            log.debug(f"ssh session opened for {self._session.target.display}")
            return self._session

    def _close_session(self) -> None:
        session, self._session, self._key = self._session, None, None
        if session is not None:
            session.close()

    def close(self) -> None:
        """Close the session (idempotent; conversions close their own processes)."""
        with self._lock:
            self._close_session()

    # ---- Engine ------------------------------------------------------------------------
    def recorded_keys(self, cfg: Config) -> list[HostKeyFp]:
        """Keys of this server already in our known_hosts (no network)."""
        return [(kind, hostkeys.fingerprint(blob))
                for kind, blob in hostkeys.known_keys(cfg.ssh_target())]

    def scan_keys(self, cfg: Config) -> list[HostKeyFp]:
        """The keys the server offers now (ssh-keyscan); nothing is recorded."""
        return [(kind, hostkeys.fingerprint(blob))
                for kind, blob in hostkeys.keyscan(cfg.ssh_target())]

    def test_connection(self, cfg: Config, observer: Observer) -> ServerInfo:
        """Test the server over the shared session; output drivers are chosen later, so none
        is checked here (the run's own test checks the chosen one)."""
        conv = Conversion(dataclasses.replace(cfg, output_type=""), session=self.session(cfg))
        conv.subscribe(observer)
        try:
            return conv.test_connection()
        finally:
            conv.close()

    def conversion(self, cfg: Config, hw: Hardware | None) -> Conversion:
        return Conversion(cfg, hw=hw, session=self.session(cfg))

    def power(self, action: str) -> None:
        argv = self.actions[action]
        r = process.run(argv, check=False, timeout=60)
        if r.rc != 0:
            raise V2VError(f"{' '.join(argv)} failed (exit code {r.rc}): {r.err.strip()}")

    def run_hook(self, stage: str, cmd: str | None) -> None:
        """Run a p2v.pre/p2v.post/p2v.fail command (argv from shlex, no shell)."""
        if not cmd:
            return
        log.message(f"running {stage}: {cmd}")
        r = process.run(command_argv(cmd), check=False)
        if r.rc != 0:
            raise V2VError(f"{stage}: command failed with exit code {r.rc}: {cmd}")
