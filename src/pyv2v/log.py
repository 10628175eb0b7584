"""Console output: stage messages with an elapsed-time prefix, warnings, debug, JSON mode.

Stage messages go to stdout as ``[  12.3] Opening the source`` (the format virt-p2v streams to
its operator).  Warnings and debug output go to stderr.  With machine-readable output enabled,
every record is one JSON object per line instead.  Only this module and monitor.py print.
"""

from __future__ import annotations

import json
import sys
import time

_start = time.monotonic()
_state = {"verbose": False, "quiet": False, "json": False, "prog": "v2v", "colours": False,
          "trace": False}


def configure(
    *,
    prog: str | None = None,
    verbose: bool | None = None,
    quiet: bool | None = None,
    json_mode: bool | None = None,
    colours: bool | None = None,
    trace: bool | None = None,
) -> None:
    """Set output options (called once by an entry point); `trace` is v2v's -x."""
    for key, val in (("prog", prog), ("verbose", verbose), ("quiet", quiet),
                     ("json", json_mode), ("colours", colours), ("trace", trace)):
        if val is not None:
            _state[key] = val


def verbose() -> bool:
    return bool(_state["verbose"])


def trace() -> bool:
    """-x: trace every libguestfs call (the appliance handle enables it)."""
    return bool(_state["trace"])


def colours() -> bool:
    """ANSI colours wanted: forced with --colours, or stdout is a terminal."""
    return bool(_state["colours"]) or sys.stdout.isatty()


def elapsed() -> float:
    return time.monotonic() - _start


def reset_clock() -> None:
    global _start
    _start = time.monotonic()


def _emit_json(kind: str, text: str, **extra: object) -> None:
    rec = {"type": kind, "message": text, "elapsed": round(elapsed(), 1), **extra}
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def message(text: str) -> None:
    """A stage message: ``[  12.3] text`` on stdout."""
    if _state["json"]:
        _emit_json("message", text)
        return
    if _state["quiet"]:
        return
    line = f"[{elapsed():6.1f}] {text}"
    if _state["colours"]:
        line = f"\x1b[1;34m{line}\x1b[0m"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def info(text: str) -> None:
    """A plain informational line on stdout (not a stage)."""
    if _state["json"]:
        _emit_json("info", text)
    elif not _state["quiet"]:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def warning(text: str) -> None:
    if _state["json"]:
        _emit_json("warning", text)
        return
    sys.stderr.write(f"{_state['prog']}: warning: {text}\n")
    sys.stderr.flush()


def error(text: str) -> None:
    if _state["json"]:
        _emit_json("error", text)
        return
    sys.stderr.write(f"{_state['prog']}: error: {text}\n")
    sys.stderr.flush()


def internal_error(e: BaseException) -> None:
    """A bug reached an entry point: one line for the user, the traceback only with -v."""
    import traceback

    debug(traceback.format_exc())
    error(f"internal error: {type(e).__name__}: {e} (run with -v for the traceback; "
          "please report this as a pyv2v bug)")


def debug(text: str) -> None:
    if _state["verbose"]:
        sys.stderr.write(f"[{elapsed():6.1f}] {text}\n")
        sys.stderr.flush()


def event(kind: str, **fields: object) -> None:
    """A structured event; printed only in JSON mode (monitor.py renders the rest)."""
    if _state["json"]:
        _emit_json(kind, kind, **fields)
