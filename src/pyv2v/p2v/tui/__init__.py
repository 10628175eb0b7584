"""The interactive console UI of p2v (Textual): connect, choose, convert, watch, cancel.

`run(cfg, hw, …)` is what `p2v` calls when the kernel command line names no conversion server
(or with --tui).  Works on an 80x25 text console, over a serial line or ssh; ASCII-only on
TERM=linux or with --ascii.  The UI owns no processes: it holds only the `Engine` protocol of
pyv2v.p2v.engine (the caller gives it the engine), calls it from worker threads and renders
its events.

    app.py              the App: settings, screens, exit code, ASCII mode
    connection.py       server, login, host key, test connection
    conversion_form.py  guest, disks, removables, NICs/networks, output options
    running.py          progress, elapsed time, log, cancel, final status, reboot/power off
    fields.py           form rows built from the config field table, inline validation
    devices.py          disk size/model/serial and NIC link state for display
    glyphs.py           ASCII mode and the glyphs the UI draws
"""

from __future__ import annotations

import sys
from typing import Any

from ...errors import V2VError
from ..config import Config
from ..engine import Engine
from ..hardware import Hardware


def run(cfg: Config, hw: Hardware | None, engine: Engine, *, iso: bool = False,
        ascii: bool | None = None, **_ignored: Any) -> int:
    """Run the UI until the operator quits; the exit code of p2v."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise V2VError("no conversion server given (--server HOST or p2v.server=HOST) and no "
                       "terminal for the interactive UI")
    from .app import P2VApp

    app = P2VApp(cfg, hw, engine=engine, iso=iso, ascii=ascii)
    code = app.run()
    return app.exit_code() if code is None else int(code)
