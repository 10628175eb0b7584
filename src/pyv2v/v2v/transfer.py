"""Pulling a remote (p2v) disk: only the used ranges, resumable, hashed, then verified.

`pull(uri, dest, size, ranges, notify, rate)` reads `ranges` (usedmap.py) from the NBD source
with libnbd into the sparse local file `dest` (all-zero chunks stay holes), in chunks of CHUNK
bytes with DEPTH reads in flight on one connection (a round trip per chunk through the ssh
tunnel was the limit: measured 28-40 MiB/s one at a time → 60-99 MiB/s pipelined on the loopback
sshd), completed in order; a second thread writes and hashes (sha256) each chunk while the main
thread drives the I/O.  If the data connection drops (the p2v side's ssh died), it reconnects
to the same URI with bounded retries and exponential backoff while p2v re-establishes its
forward, and re-issues the reads from the first chunk not yet received: nothing already pulled
is read again.  Retries exhausted → V2VError.  `rate` (ratelimit.py, --bandwidth) paces the
reads, CAPPED_CHUNK at a time, on the same path: a capped pull resumes and is verified too.
Every PROGRESS_EVERY seconds a progress line with the rate and the ETA goes to `notify`.

`verify(...)` is our extension of the p2v protocol (docs/wire.md): when the client announced
`verify` in REMOTE_DIR/p2v-features, the server writes the chunk list next to the disk's socket
(`SOCKET.ranges`), prints the VERIFY_LINE stage line that the client watches for, waits for the
client's sha256 of the same chunks read from its own disk (`SOCKET.sums`), and compares: any
difference fails the conversion.  Stock clients send no features file: nothing is asked.
Hashing a large disk takes as long as reading it, so the wait has no fixed cap: the client
reports progress in `SOCKET.sums.progress` ("DONE TOTAL"; the upload of the sums themselves,
`SOCKET.sums.part` growing, is news too) and the server fails only after VERIFY_SILENCE seconds
without news (VERIFY_TIMEOUT, or the time to read the pulled bytes at
VERIFY_MIN_RATE if longer, before the first news: a client that sends no progress).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import V2VError
from .ratelimit import RateLimit
from .usedmap import Ranges

CHUNK = int(os.environ.get("PYV2V_PULL_CHUNK", 1 << 20))
DEPTH = int(os.environ.get("PYV2V_PULL_DEPTH", "16"))  # reads in flight on the connection
CAPPED_CHUNK = 256 << 10  # under --bandwidth: the pacing step
GiB = 1024**3
MiB = 1024**2
PROGRESS_EVERY = 10.0
RETRIES = int(os.environ.get("PYV2V_PULL_RETRIES", "5"))
BACKOFF = 1.0           # seconds before the first reconnection; doubles each time
FEATURES_FILE = "p2v-features"
VERIFY_TIMEOUT = 1800.0   # before the client's first progress report
VERIFY_SILENCE = float(os.environ.get("PYV2V_VERIFY_SILENCE", "600"))  # between reports
VERIFY_MIN_RATE = 20 * (1 << 20)  # bytes/s: the slowest disk read the first wait allows for
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


def _connect(uri: str) -> Any:
    import nbd  # Debian python3-libnbd (system site-packages)

    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def _store(fd: int, buf: object, off: int, n: int) -> str:
    """Write one pulled chunk (all-zero chunks stay holes) and return its sha256 (runs in the
    hashing thread: sha256 and pwrite release the GIL while the main thread drives the I/O)."""
    data = buf.to_bytearray()  # type: ignore[attr-defined]
    if len(data) != n:
        raise V2VError(f"short read at offset {off}")
    if not buf.is_zero():  # type: ignore[attr-defined]
        os.pwrite(fd, data, off)
    return hashlib.sha256(data).hexdigest()


class _Pipe:
    """Up to DEPTH reads in flight on one NBD connection, completed in order; reconnects."""

    def __init__(self, uri: str, todo: list[tuple[int, int]], notify: Notify, pulled: Pulled,
                 rate: RateLimit | None) -> None:
        self.uri, self.todo, self.notify, self.pulled, self.rate = uri, todo, notify, pulled, rate
        self.h: Any = None
        self.inflight: collections.deque[tuple[int, Any, int]] = collections.deque()
        self.next = 0       # next chunk to submit
        self.attempt, self.delay = 0, BACKOFF

    def take(self, done: int) -> tuple[int, Any]:
        """Chunk number `done` (all before it taken): (index, its filled nbd.Buffer)."""
        import nbd

        while True:
            try:
                if self.h is None:
                    self.h, self.next = _connect(self.uri), done
                    self.inflight.clear()
                while self.next < len(self.todo) and len(self.inflight) < DEPTH:
                    off, n = self.todo[self.next]
                    if self.rate:
                        self.rate.take(n)
                    buf = nbd.Buffer(n)
                    self.inflight.append((self.next, buf, self.h.aio_pread(buf, off)))
                    self.next += 1
                idx, buf, cookie = self.inflight[0]
                while not self.h.aio_command_completed(cookie):
                    self.h.poll(-1)
                self.inflight.popleft()
                self.attempt, self.delay = 0, BACKOFF
                return idx, buf
            except nbd.Error as e:
                self._drop(done, e)

    def _drop(self, done: int, e: Exception) -> None:
        self.close()
        self.attempt += 1
        off = self.todo[done][0]
        why = getattr(e, "string", None) or e
        if self.attempt > RETRIES:
            raise V2VError(f"lost the data connection to {self.uri} at {off / GiB:.2f} GiB: "
                           f"{why} (gave up after {RETRIES} reconnection attempts)") from e
        self.notify(f"Data connection dropped at {off / GiB:.2f} GiB ({why}): "
                    f"reconnecting in {self.delay:.0f} s ({self.attempt}/{RETRIES})")
        time.sleep(self.delay)
        self.delay *= 2
        self.pulled.reconnects += 1

    def close(self) -> None:
        h, self.h = self.h, None
        self.inflight.clear()
        if h is not None:
            try:
                h.shutdown()
            except Exception:  # noqa: BLE001 - the peer may be gone already
                pass


def pull(uri: str, dest: str, size: int, ranges: Ranges, notify: Notify,
         rate: RateLimit | None = None) -> Pulled:
    todo = chunks(ranges, CAPPED_CHUNK if rate else CHUNK)
    want = sum(n for _, n in todo)
    notify(f"Pulling {want / GiB:.2f} GiB of used data ({len(ranges)} ranges) of "
           f"{size / GiB:.2f} GiB" + (f", {rate.describe()}" if rate else ""))
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    pulled = Pulled()
    pipe = _Pipe(uri, todo, notify, pulled, rate)
    start = last = time.monotonic()
    hashing: collections.deque[tuple[int, Future[str]]] = collections.deque()
    try:
        os.ftruncate(fd, size)
        with ThreadPoolExecutor(1, thread_name_prefix="pull-hash") as pool:
            got = 0
            for done in range(len(todo)):
                idx, buf = pipe.take(done)
                off, n = todo[idx]
                got += n
                hashing.append((idx, pool.submit(_store, fd, buf, off, n)))
                while hashing and (len(hashing) > DEPTH or hashing[0][1].done()
                                   or done == len(todo) - 1):
                    i, fut = hashing.popleft()
                    pulled.sums.append(fut.result())
                    pulled.chunks.append(todo[i])
                    pulled.moved += todo[i][1]
                now = time.monotonic()
                if now - last >= PROGRESS_EVERY:
                    last = now
                    rate_now = got / max(now - start, 1e-3)
                    notify(f"Pulled {got / GiB:.2f}/{want / GiB:.2f} GiB "
                           f"({100 * got / max(want, 1):.0f}%) at {rate_now / MiB:.1f} MiB/s, "
                           f"ETA {(want - got) / max(rate_now, 1.0):.0f} s")
        os.fsync(fd)
    finally:
        os.close(fd)
        pipe.close()
    took = time.monotonic() - start
    notify(f"Pulled {pulled.moved / GiB:.2f} GiB in {took:.0f} s "
           f"({pulled.moved / MiB / max(took, 1e-3):.1f} MiB/s)"
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


def _progress(path: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The client's last "DONE TOTAL" report and the identity of the file that holds it, if
    any (a partial or odd file is no report).  Each report is a new file (written, then
    renamed over the last): a repeated report, e.g. before each new attempt to send the sums,
    is news although its text is the same."""
    try:
        with open(path) as f:
            st = os.fstat(f.fileno())
            done, total = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    return (done, total), (st.st_ino, st.st_mtime_ns)


def verify(sock: str, disk: str, pulled: Pulled, notify: Notify,
           timeout: float | None = None, silence: float | None = None) -> int:
    """Ask the client for its checksums of the pulled chunks and compare; bytes verified.
    Waits `timeout` for the first news from the client (default: VERIFY_TIMEOUT or the time
    to read the pulled bytes at VERIFY_MIN_RATE), then `silence` (VERIFY_SILENCE) after each
    progress report."""
    if timeout is None:
        timeout = max(VERIFY_TIMEOUT, pulled.moved / VERIFY_MIN_RATE)
    silence = VERIFY_SILENCE if silence is None else silence
    ranges, sums, progress = sock + ".ranges", sock + ".sums", sock + ".sums.progress"
    tmp = ranges + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"algorithm": "sha256", "chunks": pulled.chunks}, f)
    os.replace(tmp, ranges)
    notify(VERIFY_LINE.format(disk=disk, n=len(pulled.chunks), path=ranges))
    deadline = time.monotonic() + timeout
    last: tuple[int, int] | None = None
    report: tuple[int, int] | None = None  # identity of the last report file seen
    uploaded = -1  # bytes of SOCKET.sums.part seen: a large reply arriving slowly is news too
    while not os.path.exists(sums):
        if (got := _progress(progress)) is not None and got[1] != report:
            report = got[1]
            deadline = time.monotonic() + silence
            if got[0] != last:
                last = got[0]
                notify(f"Verifying {disk}: the client has checksummed {last[0]} of {last[1]} "
                       "ranges")
        with contextlib.suppress(OSError):
            if (size := os.stat(sums + ".part").st_size) != uploaded:
                uploaded = size
                deadline = time.monotonic() + silence
        if time.monotonic() > deadline:
            if last is None:
                raise V2VError(f"verification of {disk}: the client sent no checksums within "
                               f"{timeout:.0f} s")
            raise V2VError(f"verification of {disk}: no word from the client for "
                           f"{silence:.0f} s (it had checksummed {last[0]} of {last[1]} ranges)")
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
