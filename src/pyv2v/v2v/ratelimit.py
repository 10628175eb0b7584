"""--bandwidth for the server's own pull of a remote disk (transfer.py): a pacing token bucket.

As virt-v2v's `--bandwidth BPS` (bits per second; k/M/G/T multiply by 1024, as nbdkit reads them)
and `--bandwidth-file FILE` (the same format, re-read every RELOAD seconds while the pull runs;
while the file is missing or unreadable, `--bandwidth` applies, or no limit).  `take(n)` blocks
until `n` more bytes may be requested: the reads are issued at the rate, so the bytes on the
wire follow it within one read (transfer.py reads CAPPED_CHUNK at a time under a cap).  Pacing
in the pull itself, rather than through an nbdkit rate proxy, keeps the client's socket URI, so
a capped pull still resumes and is still verified.
"""

from __future__ import annotations

import time

from ..rates import parse_rate

RELOAD = 1.0
BURST = 0.25  # seconds of credit a pull that fell behind may catch up at once
class RateLimit:
    def __init__(self, bps: int | None, rate_file: str | None = None) -> None:
        self.bps, self.file = bps, rate_file
        self.current = bps
        self.loaded = float("-inf")
        self.t = time.monotonic()

    @classmethod
    def of(cls, bps: int | None, rate_file: str | None) -> RateLimit | None:
        return cls(bps, rate_file) if bps or rate_file else None

    def describe(self) -> str:
        where = f" (from {self.file})" if self.file else ""
        return (f"limited to {self.bps / 1e6:.1f} Mbit/s{where}" if self.bps
                else f"limited by {self.file}")

    def rate(self) -> int | None:
        """Bits per second now (re-reading the rate file at most every RELOAD seconds)."""
        now = time.monotonic()
        if self.file and now - self.loaded >= RELOAD:
            self.loaded = now
            try:
                with open(self.file) as f:
                    self.current = parse_rate(f.read()) or self.bps
            except OSError:
                self.current = self.bps
        return self.current

    def take(self, n: int) -> None:
        bps = self.rate()
        now = time.monotonic()
        if not bps:
            self.t = now
            return
        self.t = max(self.t, now - BURST)
        wait = self.t - now
        if wait > 0:
            time.sleep(wait)
        self.t += n * 8 / bps
