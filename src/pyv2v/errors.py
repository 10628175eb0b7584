"""User-facing and internal error types.

`V2VError` is a problem the user can act on (bad input, unreachable server, disk full): the entry
points print its one-line message and exit 1.  `InternalError` is a bug.  `ProcessError` carries a
failed command's argv, exit code and output so a message can name what failed.
"""

from __future__ import annotations


class V2VError(Exception):
    """An error caused by input or environment; shown to the user as one line, exit code 1."""

    exit_code = 1


class InternalError(Exception):
    """A bug in pyv2v; shown with a request to report it."""


class Cancelled(V2VError):
    """The run was cancelled (SIGINT/SIGTERM or an API call)."""

    exit_code = 130


class ProcessError(V2VError):
    """A child program failed."""

    def __init__(self, cmd: list[str], rc: int | None, out: str = "", err: str = "") -> None:
        self.cmd = list(cmd)
        self.rc = rc
        self.out = out
        self.err = err
        tail = (err or out).strip().splitlines()
        last = tail[-1] if tail else ""
        what = "timed out" if rc is None else f"failed with exit code {rc}"
        super().__init__(f"{cmd[0]} {what}" + (f": {last}" if last else ""))
