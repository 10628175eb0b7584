"""Guest names: the one rule both p2v (before it connects) and the v2v server apply.

A guest name becomes output file names, a libvirt domain name and a remote argv word, so it is
letters, digits and `- _ . +` only, and does not start with `.` (no hidden files, no `..`).
`guest_name_problem(name)` says what is wrong with `name` (None when it is fine); each side
words its own one-line error around it (the server suggests -on, p2v suggests p2v.name/--name).
This module imports neither p2v nor v2v.
"""

from __future__ import annotations

ALLOWED_PUNCTUATION = "-_.+"
RULE = "use letters, digits and - _ . +"


def guest_name_problem(name: str | None) -> str | None:
    """None if `name` is a valid guest name, else a short reason (for a one-line error)."""
    if not name:
        return "the name is empty"
    if name.startswith("."):
        return "it must not start with '.'"
    bad = next((c for c in name if not (c.isalnum() or c in ALLOWED_PUNCTUATION)), None)
    if bad is not None:
        return f"{bad!r} is not allowed: {RULE}"
    return None


def valid_guest_name(name: str | None) -> bool:
    return guest_name_problem(name) is None
