"""Events the conversion engine emits; a UI (text or Textual) renders them and owns nothing.

Observers are plain callables `fn(event)`, called in the engine's thread, in order.  A UI
running the engine in a worker thread should hand events to its own loop (e.g. Textual's
`call_from_thread`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    """A step of the conversion, e.g. "Starting local NBD server for sda"."""

    text: str


@dataclass(frozen=True)
class HostKey:
    """The server's host key: newly trusted on first use, or matched against the pin."""

    host: str
    fingerprints: tuple[str, ...]
    pinned: bool
    known_hosts: str


@dataclass(frozen=True)
class ServerInfoEvent:
    """Test connection passed: the remote virt-v2v version and its output drivers."""

    version: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class LogDir:
    """The remote work directory holding physical.xml, status and the conversion log."""

    path: str


@dataclass(frozen=True)
class RemoteLine:
    """One line of virt-v2v's stdout, live from the control connection."""

    text: str


@dataclass(frozen=True)
class DiskProgress:
    """Bytes the local NBD server has read for one disk so far (approximate)."""

    disk: str
    done: int
    total: int


@dataclass(frozen=True)
class Finished:
    """The end: ok, the remote exit code (None if it never ran), a message, the log dir."""

    ok: bool
    exit_code: int | None
    message: str
    remote_dir: str | None
    cancelled: bool = False


Event = Status | HostKey | ServerInfoEvent | LogDir | RemoteLine | DiskProgress | Finished
Observer = Callable[[Event], None]
