"""Bandwidth rates as virt-v2v's `--bandwidth` writes them: bits per second, with k/M/G/T
multiplying by 1024 as nbdkit reads them ("10M" = 10 Mibit/s).  Shared by v2v (the option and
--bandwidth-file) and p2v (p2v.bandwidth, checked before it is passed on), so the p2v media
ship it.
"""

from __future__ import annotations

import re

_RATE_RE = re.compile(r"\s*(\d+)\s*([kKmMgGtT]?)\s*$")


def parse_rate(text: str) -> int | None:
    """Bits per second from "10M"-style text; None when it is not a rate."""
    m = _RATE_RE.match(text)
    if not m:
        return None
    return int(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower())
