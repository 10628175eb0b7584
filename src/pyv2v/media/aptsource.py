"""Which Debian mirror the media are built from: the one this machine's apt is configured with.

Read from /etc/apt/sources.list.d/*.sources (deb822) or /etc/apt/sources.list; never a
hard-coded host.  `release_digest` pins the package versions of a build (the suite's InRelease).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime

from ..errors import V2VError

APT_DIR = "/etc/apt"


def _deb822_entries(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if cur:
                entries.append(cur)
            cur, last = {}, ""
            continue
        if line.lstrip().startswith("#"):
            continue
        if line[0] in " \t" and last:  # continuation line
            cur[last] += " " + line.strip()
            continue
        key, sep, val = line.partition(":")
        if sep:
            last = key.strip().lower()
            cur[last] = val.strip()
    if cur:
        entries.append(cur)
    return entries


def from_deb822(text: str, suite: str) -> str | None:
    for e in _deb822_entries(text):
        if e.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in e.get("types", "").split():
            continue
        if suite in e.get("suites", "").split() and e.get("uris"):
            return e["uris"].split()[0]
    return None


_LIST_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)")


def from_sources_list(text: str, suite: str) -> str | None:
    for line in text.splitlines():
        m = _LIST_LINE.match(line)
        if m and m.group(2) == suite:
            return m.group(1)
    return None


def find_mirror(suite: str, apt_dir: str = APT_DIR) -> str:
    """The URI apt uses for `suite` (e.g. "bookworm"), or a V2VError saying where we looked."""
    for path in sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.sources"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            uri = from_deb822(f.read(), suite)
        if uri:
            return uri.rstrip("/")
    lists = [
        os.path.join(apt_dir, "sources.list"),
        *sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.list"))),
    ]
    for path in lists:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                uri = from_sources_list(f.read(), suite)
        except OSError:
            continue
        if uri:
            return uri.rstrip("/")
    raise V2VError(
        f"no apt source for suite {suite!r} in {apt_dir}/sources.list.d/*.sources or "
        f"{apt_dir}/sources.list: cannot tell which Debian mirror to build from"
    )


def release_digest(mirror: str, suite: str) -> tuple[str, int]:
    """(sha256 of the suite's InRelease, its Date as a Unix time): the same digest means the
    same package versions; the date serves as SOURCE_DATE_EPOCH."""
    url = f"{mirror}/dists/{suite}/InRelease"
    try:
        with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 - the apt mirror
            data: bytes = r.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise V2VError(f"cannot read {url}: {e}") from None
    m = re.search(rb"^Date:\s*(.+)$", data, re.M)
    epoch = int(parsedate_to_datetime(m.group(1).decode()).timestamp()) if m else 0
    return hashlib.sha256(data).hexdigest(), epoch
