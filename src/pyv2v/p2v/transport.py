"""The p2v side of the data transport beyond the reference wire: resume and verification.

Resume: when a data connection (the `ssh -R` of one disk) dies during the conversion,
`Transport.check()` re-establishes it: the old ssh and NBD server are stopped, the stale
server-side socket is removed (sshd does not unlink it, and a new forward cannot bind over it),
and `open_data_conn` runs again for the same socket path, with exponential backoff, each
attempt reported as a Status event; RETRIES attempts in all until the connection has stayed
up STABLE seconds (so a link that dies again at once still runs out).  The server's pull
reconnects to the same socket and continues where it was (v2v/transfer.py).  Only unix-socket
forwards (pyv2v servers) are resumed: a stock server's TCP port would change.  The control
connection is not resumable: its loss ends the remote conversion (the session gets SIGHUP).

Verify (docs/wire.md): p2v announces `verify` in REMOTE_DIR/p2v-features.  When the server
prints VERIFY_RE's line, a thread fetches the chunk list it names, hashes the same chunks read
directly from this machine's disk (not through the NBD server and tunnel being checked), and
uploads the sha256 list as SOCKET.sums (one ssh command writes .part, mode 0600, then renames
it), trying again a few times; if it cannot be delivered the conversion fails at once rather
than leave the server waiting for it.  When it starts hashing and every PROGRESS_EVERY seconds
after, it reports "DONE TOTAL" as SOCKET.sums.progress (best effort): the server waits as long
as news keeps coming, however large the disk.  The server compares and prints
"Verified N GiB of DISK"; `verified` sums those for the final summary.  `close()` (the
conversion's end, before the process-wide cleanup) stops the verification threads: no new ssh
is started after it, a reply in flight gets CLOSE_GRACE seconds and then its ssh is killed, and
the threads are joined, so no reply ssh outlives p2v (seen: a retry started after the cleanup).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import threading
import time
from collections.abc import Callable

from .. import log, process
from ..errors import V2VError
from .events import Event, Status
from .hardware import device_path
from .nbd_export import DataConn, open_data_conn
from .session import Session

FEATURES = "verify\n"
RETRIES = int(os.environ.get("PYV2V_DATA_RETRIES", "5"))
BACKOFF = 0.5  # seconds before the first attempt; doubles with each attempt
SEND_RETRIES = (1.0, 2.0, 4.0, 8.0)  # waits between attempts to deliver the checksums
CLOSE_GRACE = 5.0  # close() lets a reply in flight finish this long, then kills it
PROGRESS_EVERY = 30.0  # seconds between checksumming progress reports to the server
STABLE = 60.0  # a connection up this long has recovered: its attempts start again from 1
VERIFY_RE = re.compile(r"Verifying (?P<disk>\S+): asking the client for checksums of "
                       r"(?P<n>\d+) ranges \((?P<path>/\S+\.ranges)\)")
SLOWEST = 100_000  # bytes/s: the slowest link an ssh transfer's timeout allows for
VERIFIED_RE = re.compile(r"Verified (\d+(?:\.\d+)?) GiB of \S+: identical to the source")


def checksums(path: str, chunks: list[list[int]], stop: threading.Event | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[str]:
    """sha256 of each (offset, length) chunk of the local disk `path` (opened read-only);
    abandoned (V2VError) once `stop` is set; `progress(done, total)` at the start (the server
    then knows the client is at work) and every PROGRESS_EVERY s."""
    out: list[str] = []
    next_report = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        for off, n in chunks:
            if stop is not None and stop.is_set():
                raise V2VError("the conversion ended while checksumming")
            if progress is not None and time.monotonic() >= next_report:
                progress(len(out), len(chunks))
                next_report = time.monotonic() + PROGRESS_EVERY
            data = os.pread(f.fileno(), n, off)
            if len(data) != n:
                raise V2VError(f"short read of {path} at offset {off}")
            out.append(hashlib.sha256(data).hexdigest())
    return out


class Transport:
    def __init__(self, session: Session, conns: list[DataConn], server: str,
                 emit: Callable[[Event], None]) -> None:
        self.s = session
        self.conns = conns
        self.server = server
        self.emit = emit
        self.verified = 0.0
        self.attempts: dict[str, int] = {}
        self.up_since: dict[str, float] = {}
        self.threads: list[threading.Thread] = []
        self.failure: str | None = None  # set by a verification thread that could not reply
        self._stop = threading.Event()  # set by close(): verification threads start nothing

    def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop the verification threads: no ssh is started from now on; those in flight get
        `grace` seconds to finish (a reply in its last round trip), then are killed, so that
        a cancel on a dead link does not wait for their timeouts."""
        self._stop.set()
        deadline = time.monotonic() + grace
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if alive := {t.ident for t in self.threads if t.is_alive()}:
            log.debug(f"stopping {len(alive)} verification thread(s) still waiting on ssh")
            process.terminate_started_by(alive)
            for t in self.threads:
                t.join(10)

    def summary(self) -> str:
        return f" {self.verified:.2f} GiB verified." if self.verified else ""

    # ---- resume ----------------------------------------------------------------------
    def check(self) -> str | None:
        """Reopen dead data connections; a failure message once the retries are exhausted
        (or once a verification reply could not be delivered).
        Attempts count across reconnections until a connection stays up STABLE seconds."""
        if self.failure:
            return self.failure
        for i, c in enumerate(self.conns):
            if c.alive():
                continue
            why = c.why_dead()
            if c.remote_socket is None:
                return f"conversion failed: {why}"
            c.close()
            if time.monotonic() - self.up_since.get(c.disk, 0.0) >= STABLE:
                self.attempts[c.disk] = 0
            new = self._reopen(c, why)
            if new is None:
                return f"conversion failed: {why} (reconnection failed {RETRIES} times)"
            self.conns[i] = new
            self.up_since[c.disk] = time.monotonic()
        return None

    def _reopen(self, c: DataConn, why: str) -> DataConn | None:
        assert c.remote_socket is not None
        while (attempt := self.attempts.get(c.disk, 0) + 1) <= RETRIES:
            self.attempts[c.disk] = attempt
            self.emit(Status(f"Data connection for {c.disk} lost ({why}): reconnecting "
                             f"({attempt}/{RETRIES})"))
            time.sleep(BACKOFF * 2 ** (attempt - 1))
            try:
                self.s.run(f"rm -f {shlex.quote(c.remote_socket)}", what="data connection")
                new = open_data_conn(self.s, c.disk, self.server, c.remote_socket, c.compress)
                self.emit(Status(f"Data connection for {c.disk} re-established"))
                return new
            except V2VError as e:
                log.debug(f"reconnecting {c.disk}: {e}")
                why = str(e)
        return None

    # ---- verify ----------------------------------------------------------------------
    def on_line(self, line: str) -> None:
        if m := VERIFIED_RE.search(line):
            self.verified += float(m.group(1))
            self.emit(Status(f"{m.group(1)} GiB verified"))
        elif (m := VERIFY_RE.search(line)) and not self._stop.is_set():
            t = threading.Thread(target=self._answer, args=(m["path"], int(m["n"])),
                                 daemon=True, name="p2v-verify")
            t.start()
            self.threads.append(t)

    def _conn_for(self, ranges_path: str) -> DataConn | None:
        sock = ranges_path[: -len(".ranges")]
        return next((c for c in self.conns if c.remote_socket == sock), None)

    def _answer(self, ranges_path: str, n: int) -> None:
        sock = ranges_path[: -len(".ranges")]
        disk = os.path.basename(sock)
        reply: dict[str, object]
        try:
            conn = self._conn_for(ranges_path)
            if conn is None:
                raise V2VError(f"the server asked about an unknown disk ({ranges_path})")
            disk = conn.disk
            r = self.s.run(["cat", ranges_path], what="verification",
                           timeout=120 + n * 30 / SLOWEST)  # ~30 bytes of JSON a range
            req = json.loads(r.out)
            if req.get("algorithm") != "sha256":
                raise V2VError(f"unsupported checksum {req.get('algorithm')!r}")
            self.emit(Status(f"Checksumming {len(req['chunks'])} ranges of {conn.disk} "
                             "for verification"))
            reply = {"sums": checksums(device_path(conn.disk), req["chunks"], self._stop,
                                       functools.partial(self._progress, sock, conn.disk))}
        except (V2VError, OSError, ValueError, KeyError, TypeError) as e:
            reply = {"error": str(e)}
        except Exception as e:  # noqa: BLE001 - the server must hear back, whatever happened
            reply = {"error": f"internal error: {e!r}"}
        sums = reply.get("sums")
        self._send(disk, sock + ".sums", json.dumps(reply),
                   len(sums) if isinstance(sums, list) else None)

    def _put(self, dest: str, text: str, timeout: float) -> process.Result:
        """Write `text` as `dest` on the server: one ssh command writes .part (mode 0600) and
        renames it, so the server never reads a partial file."""
        part = shlex.quote(dest + ".part")
        return self.s.run(f"umask 077 && cat > {part} && mv -f {part} {shlex.quote(dest)}",
                          input=text, timeout=timeout, what="verification")

    def _progress(self, sock: str, disk: str, done: int, total: int) -> None:
        """Report checksumming progress here and to the server, best effort (a missed report
        only brings the server's deadline closer)."""
        self.emit(Status(f"Checksummed {done} of {total} ranges of {disk}"))
        try:
            r = self._put(sock + ".sums.progress", f"{done} {total}\n", timeout=30)
            if r.rc != 0:
                log.debug(f"progress report for {disk}: exit code {r.rc}")
        except V2VError as e:
            log.debug(f"progress report for {disk}: {e}")

    def _send(self, disk: str, dest: str, text: str, total: int | None = None) -> None:
        """Deliver the reply as `dest` on the server (one ssh command: written as .part with a
        0600 mode, renamed when complete), trying again after SEND_RETRIES' waits.  Once they
        are exhausted the server would wait for it in vain: `failure` ends the conversion."""
        why = ""
        for attempt, delay in enumerate((*SEND_RETRIES, None)):
            if self._stop.is_set():
                log.debug(f"the conversion ended: the checksums of {disk} are not sent")
                return
            if attempt and total is not None:  # the server's wait restarts with each news
                self._progress(dest[: -len(".sums")], disk, total, total)
            try:
                r = self._put(dest, text, timeout=120 + len(text) / SLOWEST)
                if r.rc == 0:
                    return
                if r.rc < 0 and (self._stop.is_set() or process.cancelled()):
                    log.debug(f"sending the checksums of {disk}: ssh killed (signal {-r.rc}) "
                              "by p2v's own cancel or cleanup")
                    return
                why = r.err.strip().splitlines()[-1] if r.err.strip() else f"exit code {r.rc}"
            except V2VError as e:
                why = str(e)
            if delay is None:
                break
            log.debug(f"sending the checksums of {disk} failed ({why}): again in {delay:.0f} s")
            if self._stop.wait(delay):
                return
        self.failure = (f"conversion failed: could not send the verification checksums of "
                        f"{disk} to the server: {why}")
