"""Pulling a remote (p2v) disk: only the used ranges, resumable, hashed, then verified.

`pull(uri, dest, size, ranges, notify)` reads `ranges` (usedmap.py) from the NBD source with
libnbd in chunks of at most CHUNK bytes, in order, into the sparse local file `dest` (all-zero
chunks stay holes), hashing each chunk (sha256).  If the data connection drops (the p2v side's
ssh died), it reconnects to the same URI with bounded retries and exponential backoff while
p2v re-establishes its forward, and continues with the chunk it was reading: nothing already
pulled is read again.  Retries exhausted → V2VError.  Every PROGRESS_EVERY seconds a progress
line with the rate and the ETA goes to `notify`.

`verify(...)` is our extension of the p2v protocol (PROTOCOL.md §8): when the client announced
`verify` in REMOTE_DIR/p2v-features, the server writes the chunk list next to the disk's socket
(`SOCKET.ranges`), prints the VERIFY_LINE stage line that the client watches for, waits for the
client's sha256 of the same chunks read from its own disk (`SOCKET.sums`), and compares: any
difference fails the conversion.  Stock clients send no features file: nothing is asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from ..errors import V2VError
from .usedmap import Ranges

CHUNK = 4 << 20
GiB = 1024**3
MiB = 1024**2
PROGRESS_EVERY = 10.0
RETRIES = int(os.environ.get("PYV2V_PULL_RETRIES", "5"))
BACKOFF = 1.0           # seconds before the first reconnection; doubles each time
FEATURES_FILE = "p2v-features"
VERIFY_TIMEOUT = 1800.0
VERIFY_LINE = "Verifying {disk}: asking the client for checksums of {n} ranges ({path})"

Notify = Callable[[str], None]


@dataclass
class Pulled:
    chunks: list[tuple[int, int]] = field(default_factory=list)
    sums: list[str] = field(default_factory=list)
    moved: int = 0          # bytes read from the source
    reconnects: int = 0


def chunks(ranges: Ranges, size: int = CHUNK) -> list[tuple[int, int]]:
    """`ranges` cut into pieces of at most `size` bytes."""
    return [(off + i, min(size, n - i)) for off, n in ranges for i in range(0, n, size)]


def _connect(uri: str) -> object:
    import nbd  # Debian python3-libnbd (system site-packages)

    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def _read(state: dict[str, object], uri: str, off: int, n: int, notify: Notify,
          pulled: Pulled) -> bytes:
    """One chunk; on a dropped connection, reconnect (bounded, with backoff) and read again."""
    import nbd

    delay, attempt = BACKOFF, 0
    while True:
        try:
            h = state.get("h") or _connect(uri)
            state["h"] = h
            data: bytes = h.pread(n, off)  # type: ignore[attr-defined]
            return data
        except nbd.Error as e:
            state["h"] = None
            attempt += 1
            if attempt > RETRIES:
                raise V2VError(f"lost the data connection to {uri} at {off / GiB:.2f} GiB: "
                               f"{e.string or e} (gave up after {RETRIES} reconnection "
                               "attempts)") from e
            notify(f"Data connection dropped at {off / GiB:.2f} GiB ({e.string or e}): "
                   f"reconnecting in {delay:.0f} s ({attempt}/{RETRIES})")
            time.sleep(delay)
            delay *= 2
            pulled.reconnects += 1


def pull(uri: str, dest: str, size: int, ranges: Ranges, notify: Notify) -> Pulled:
    todo = chunks(ranges)
    want = sum(n for _, n in todo)
    notify(f"Pulling {want / GiB:.2f} GiB of used data ({len(ranges)} ranges) of "
           f"{size / GiB:.2f} GiB")
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    pulled = Pulled()
    state: dict[str, object] = {}
    start = last = time.monotonic()
    try:
        os.ftruncate(fd, size)
        for off, n in todo:
            data = _read(state, uri, off, n, notify, pulled)
            if len(data) != n:
                raise V2VError(f"short read from {uri} at offset {off}")
            if data.count(0) != n:
                os.pwrite(fd, data, off)
            pulled.chunks.append((off, n))
            pulled.sums.append(hashlib.sha256(data).hexdigest())
            pulled.moved += n
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY:
                last = now
                rate = pulled.moved / max(now - start, 1e-3)
                eta = (want - pulled.moved) / max(rate, 1.0)
                notify(f"Pulled {pulled.moved / GiB:.2f}/{want / GiB:.2f} GiB "
                       f"({100 * pulled.moved / max(want, 1):.0f}%) at {rate / MiB:.1f} MiB/s, "
                       f"ETA {eta:.0f} s")
        os.fsync(fd)
    finally:
        os.close(fd)
        h = state.get("h")
        if h is not None:
            try:
                h.shutdown()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - the peer may be gone already
                pass
    took = time.monotonic() - start
    notify(f"Pulled {pulled.moved / GiB:.2f} GiB in {took:.0f} s"
           + (f" ({pulled.reconnects} reconnections)" if pulled.reconnects else ""))
    return pulled


def socket_of(uri: str) -> str | None:
    """The unix socket of an nbd+unix:// URI (a pyv2v p2v client's disk), else None."""
    parts = urlsplit(uri)
    if parts.scheme != "nbd+unix":
        return None
    return (parse_qs(parts.query).get("socket") or [""])[0] or None


def client_verifies(sock: str | None) -> bool:
    if not sock:
        return False
    try:
        with open(os.path.join(os.path.dirname(sock), FEATURES_FILE)) as f:
            return "verify" in f.read().split()
    except OSError:
        return False


def verify(sock: str, disk: str, pulled: Pulled, notify: Notify,
           timeout: float = VERIFY_TIMEOUT) -> int:
    """Ask the client for its checksums of the pulled chunks and compare; bytes verified."""
    ranges, sums = sock + ".ranges", sock + ".sums"
    tmp = ranges + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"algorithm": "sha256", "chunks": pulled.chunks}, f)
    os.replace(tmp, ranges)
    notify(VERIFY_LINE.format(disk=disk, n=len(pulled.chunks), path=ranges))
    deadline = time.monotonic() + timeout
    while not os.path.exists(sums):
        if time.monotonic() > deadline:
            raise V2VError(f"verification of {disk}: the client sent no checksums within "
                           f"{timeout:.0f} s")
        time.sleep(0.5)
    try:
        with open(sums) as f:
            theirs = json.load(f)
    except (OSError, ValueError) as e:
        raise V2VError(f"verification of {disk}: unreadable checksums from the client: "
                       f"{e}") from e
    if not isinstance(theirs, dict) or theirs.get("error"):
        why = theirs.get("error") if isinstance(theirs, dict) else "bad format"
        raise V2VError(f"verification of {disk}: the client could not checksum its disk: {why}")
    bad = [c for c, a, b in zip(pulled.chunks, pulled.sums, theirs.get("sums", []), strict=False)
           if a != b]
    if bad or len(theirs.get("sums", [])) != len(pulled.sums):
        where = f", first at offset {bad[0][0]}" if bad else ""
        raise V2VError(f"verification of {disk} failed: {len(bad)} of {len(pulled.chunks)} "
                       f"ranges differ from the source{where}")
    notify(f"Verified {pulled.moved / GiB:.2f} GiB of {disk}: identical to the source")
    return pulled.moved
