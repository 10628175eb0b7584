"""User-facing and internal error types, and the exit statuses of both commands (p2v and v2v).

`V2VError` is a problem the user can act on (bad input, unreachable server, disk full): the entry
points print its one-line message and exit with its `exit_code`.  `UsageError` is a bad or
unsupported command-line option.  `Cancelled` is a run stopped by a signal or the user.
`InternalError` (or any unexpected exception reaching an entry point) is a bug.  `ProcessError`
carries a failed command's argv, exit code and output so a message can name what failed.

Exit statuses, the same for `p2v` and `v2v` (EXIT_STATUS_HELP is printed in both `--help`s):

  0    success
  1    error: bad input, unreachable server, failed conversion (one line on stderr)
  2    usage: unknown, malformed or unsupported option (argparse's own convention)
  70   internal error: a pyv2v bug (EX_SOFTWARE from sysexits.h; traceback with -v)
  128+N  cancelled by signal N: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP (the shell's
       convention for a signal death, so `$?` reads the same whether we were killed or stopped
       cleanly on the signal)

1 and 2 are what argparse/virt-v2v users already expect; 70 keeps bugs distinguishable from bad
input without colliding with 1–2 or 126–165 (shell/signal statuses); 128+N lets scripts and
virt-p2v's wrapper tell a cancel from a failure.
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_SIGNAL_BASE = 128

EXIT_STATUS_HELP = """\
exit status:
  0  success        1  error (bad input, failed conversion)     2  usage (bad/unsupported option)
  70 internal error (a pyv2v bug; run with -v for the traceback)
  128+N  cancelled by signal N: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP
"""


def exit_code_for_signal(sig: int | str | None) -> int:
    """128 + the signal number ('SIGTERM' → 143); Ctrl-C (SIGINT, 130) when unknown."""
    if isinstance(sig, str):
        try:
            sig = signal.Signals[sig]
        except KeyError:
            sig = None
    return EXIT_SIGNAL_BASE + int(sig if sig is not None else signal.SIGINT)


class V2VError(Exception):
    """An error caused by input or environment; shown to the user as one line, exit code 1."""

    exit_code = EXIT_ERROR


class UsageError(V2VError):
    """A bad, unknown or unsupported command-line option (exit code 2)."""

    exit_code = EXIT_USAGE


class InternalError(Exception):
    """A bug in pyv2v; shown with a request to report it (exit code 70)."""

    exit_code = EXIT_INTERNAL


class Cancelled(V2VError):
    """The run was cancelled (SIGINT/SIGTERM/SIGHUP or an API call): exit code 128 + signal."""

    exit_code = EXIT_SIGNAL_BASE + int(signal.SIGINT)

    def __init__(self, message: str = "cancelled", signum: int | str | None = None) -> None:
        super().__init__(message)
        if signum is not None:
            self.exit_code = exit_code_for_signal(signum)


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
