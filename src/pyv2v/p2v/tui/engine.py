"""The UI's seam to the p2v engine: host keys, test connection, conversions, power actions.

The UI never starts a process itself: everything that touches the network, the disks or the
machine goes through an `Engine`.  `RealEngine` adapts pyv2v.p2v.conversion.Conversion and
pyv2v.ssh (recorded host keys, ssh-keyscan); tests pass a fake with the same methods.  Every
method may block and is called from a worker thread, except `Conversion.cancel()`, which is
safe from any thread.  Power actions (Reboot / Power off in --iso mode) are argv lists given to
the constructor, so tests can replace them with something harmless.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

from ... import process, ssh
from ...errors import V2VError
from ..config import Config
from ..conversion import Conversion
from ..events import Finished, Observer
from ..hardware import Hardware
from ..remote import ServerInfo

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


def target(cfg: Config) -> ssh.Target:
    return ssh.Target(host=cfg.server or "", port=cfg.port, user=cfg.username,
                      known_hosts=cfg.known_hosts or "", hostkey=cfg.hostkey)


def preferred(keys: Sequence[HostKeyFp]) -> HostKeyFp:
    """The key to pin when the operator accepts: ed25519 if offered, else the first."""
    return next((k for k in keys if k[0] == "ssh-ed25519"), keys[0])


class RealEngine:
    def __init__(self, nbd_server: str = "nbdkit",
                 actions: Mapping[str, Sequence[str]] | None = None) -> None:
        self.nbd_server = nbd_server
        self.actions = {k: list(v) for k, v in (actions or POWER_ACTIONS).items()}

    def recorded_keys(self, cfg: Config) -> list[HostKeyFp]:
        """Keys of this server already in our known_hosts (no network)."""
        return [(kind, ssh.fingerprint(blob)) for kind, blob in ssh.known_keys(target(cfg))]

    def scan_keys(self, cfg: Config) -> list[HostKeyFp]:
        """The keys the server offers now (ssh-keyscan); nothing is recorded."""
        return [(kind, ssh.fingerprint(blob)) for kind, blob in ssh.keyscan(target(cfg))]

    def test_connection(self, cfg: Config, observer: Observer) -> ServerInfo:
        """The engine's test connection; output drivers are chosen later, so none is checked."""
        conv = Conversion(dataclasses.replace(cfg, output_type=""), nbd_server=self.nbd_server)
        conv.subscribe(observer)
        try:
            return conv.test_connection()
        finally:
            conv.close()

    def conversion(self, cfg: Config, hw: Hardware | None) -> ConversionLike:
        return Conversion(cfg, hw=hw, nbd_server=self.nbd_server)

    def power(self, action: str) -> None:
        argv = self.actions[action]
        r = process.run(argv, check=False, timeout=60)
        if r.rc != 0:
            raise V2VError(f"{' '.join(argv)} failed (exit code {r.rc}): {r.err.strip()}")
