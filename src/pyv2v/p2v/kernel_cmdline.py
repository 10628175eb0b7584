"""Kernel command line parsing: `key=value` words with double-quoted values (reference rules).

The parser follows virt-p2v's kernel-cmdline.c: words are separated by whitespace; a word is
`key`, `key=` or `key=value`; a value starting with `"` runs to the next `"` (so it may hold
spaces); a key without `=` has the empty value.  `Cmdline.get` returns the *first* occurrence
of a key, and `Cmdline.lookup(canonical, alias)` prefers the canonical name over its alias
wherever each appears.  This module only parses; config.py gives the keys their meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .. import log

PROC_CMDLINE = "/proc/cmdline"


def parse(text: str) -> list[tuple[str, str]]:
    """Split a kernel command line into (key, value) pairs, in order."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and not text[i].isspace() and text[i] != "=":
            i += 1
        key = text[start:i]
        if i >= n or text[i] != "=":
            pairs.append((key, ""))
            continue
        i += 1  # skip '='
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end == -1:
                log.warning("unterminated quoted string on the kernel command line")
                end = n
            pairs.append((key, text[i + 1:end]))
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace():
                i += 1
            pairs.append((key, text[start:i]))
    return pairs


@dataclass
class Cmdline:
    """Parsed kernel command line.  `source` is "proc", "string" or "none"."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    source: str = "none"

    @classmethod
    def from_string(cls, text: str, source: str = "string") -> Cmdline:
        return cls(parse(text), source)

    @classmethod
    def from_proc(cls, path: str = PROC_CMDLINE) -> Cmdline:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:  # bytes never crash
                text = f.read()
        except OSError:
            return cls([], "none")
        return cls(parse(text), "proc")

    def get(self, key: str) -> str | None:
        """The value of the first occurrence of `key`, or None."""
        for k, v in self.pairs:
            if k == key:
                return v
        return None

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def lookup(self, canonical: str, alias: str | None = None) -> tuple[str, str] | None:
        """(key used, value): the canonical key if present anywhere, else the alias."""
        for key in (canonical, alias):
            if key is not None:
                value = self.get(key)
                if value is not None:
                    return key, value
        return None

    def keys(self) -> Iterator[str]:
        return (k for k, _ in self.pairs)
