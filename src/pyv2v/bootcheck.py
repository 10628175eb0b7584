"""Read a guest's serial console and tell how far its boot got: login prompt, initramfs, panic.

The pure part of booting a converted guest to verify it: console text in, outcome out.  No
process is started here; whoever runs the guest (the test harness today, `--verify-boot`
later) feeds the console text it collected to `classify` until it returns an outcome.
"""

from __future__ import annotations

import re

# Outcomes of a boot: the three the console proves (CONSOLE_OUTCOMES) and two the runner decides.
CONSOLE_OUTCOMES = ("login", "initramfs", "panic")
OUTCOMES = (*CONSOLE_OUTCOMES, "timeout", "qemu-error")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1bc")
_LOGIN = re.compile(r"^\S+ login: ", re.M)   # kernel messages may follow on the same line
_PANIC = re.compile(r"Kernel panic - not syncing|end Kernel panic")
_INITRAMFS = re.compile(r"^\(initramfs\)|^ALERT! |Gave up waiting for root", re.M)


def clean(text: str) -> str:
    """Console bytes as plain lines: no ANSI escapes, no carriage returns."""
    return _ANSI.sub("", text).replace("\r", "")


def classify(text: str) -> str | None:
    """The outcome the console text proves so far ("login", "initramfs", "panic"), or None.

    A panic or an initramfs shell wins over a login prompt seen earlier (a later failure is
    what counts); None means the guest is still booting.
    """
    t = clean(text)
    if _PANIC.search(t):
        return "panic"
    if _INITRAMFS.search(t):
        return "initramfs"
    if _LOGIN.search(t):
        return "login"
    return None


def evidence(text: str, outcome: str) -> str:
    """The console line that proves a failed outcome ("panic", "initramfs"), else ""."""
    pattern = {"panic": _PANIC, "initramfs": _INITRAMFS}.get(outcome)
    t = clean(text)
    m = pattern.search(t) if pattern else None
    if not m:
        return ""
    start = t.rfind("\n", 0, m.start()) + 1
    end = t.find("\n", m.end())
    return t[start:end if end >= 0 else None].strip()
