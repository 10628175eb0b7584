"""The p2v console application: settings, the three screens, exit status, ASCII mode.

`P2VApp(cfg, hw, engine=…, iso=…, ascii=…)` starts on the connection screen, then goes to the
conversion screen (after a successful test connection) and to the running screen.  It owns no
processes: screens call the given `Engine` (the protocol of pyv2v.p2v.engine; the caller
builds the real one, tests a fake) from worker threads and get its events back through
`call_from_thread`.  Ctrl+Q quits (while a conversion runs, only after confirming a cancel and
once the engine has finished).  The exit code is 0 after a successful conversion or when the
operator quits before converting, 1 after a failed or cancelled one.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable

from textual.app import App
from textual.binding import Binding
from textual.containers import Vertical
from textual.scrollbar import ScrollBar
from textual.widget import Widget
from textual.widgets import Static

from ... import __version__
from ..config import Config
from ..engine import Engine
from ..events import Finished
from ..hardware import Hardware
from ..remote import ServerInfo
from .glyphs import ASCII_CSS, PlainScrollBarRender, want_ascii

BASE_CSS = """
Screen { layout: vertical; }
.title { height: 1; background: $primary; color: $text; text-style: bold; padding: 0 1; }
.bottom { dock: bottom; height: auto; }
.keys { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
.help { height: auto; max-height: 2; color: $text-muted; padding: 0 1; }
.box { border: round $primary; height: auto; padding: 0 1; border-title-style: bold; }
.box.warn { border: round $warning; }
Log.box { height: 1fr; padding: 0 1; }
.buttons { height: 1; margin: 0 1; }
.buttons Button { margin-right: 2; }
Button { min-width: 10; }
Button:focus { text-style: bold reverse; }
Input:focus { background: $primary 30%; }
Checkbox:focus > .toggle--label { text-style: bold reverse; }
.ok { color: $success; }
.bad { color: $error; }
.heading { text-style: bold; height: 1; }
"""


def bottom_bar(keys: str, help: bool = True) -> Vertical:
    """The help line for the focused field (id "help") above the key hints, docked at the bottom."""
    lines = [Static("", classes="help", id="help")] if help else []
    return Vertical(*lines, Static(keys, classes="keys"), classes="bottom")


class P2VApp(App[int]):
    TITLE = "p2v"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit_p2v", "Quit", priority=True)]

    def __init__(self, cfg: Config, hw: Hardware | None, *, engine: Engine,
                 iso: bool = False, ascii: bool | None = None, devroot: str = "/",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ascii = want_ascii(ascii, os.environ.get("TERM"))
        self.CSS = BASE_CSS + (ASCII_CSS if self.ascii else "")  # type: ignore[misc]  # per run
        super().__init__()
        ScrollBar.renderer = PlainScrollBarRender  # spaces only, in both modes
        self.cfg = copy.deepcopy(cfg)
        self.hw = hw
        self.engine = engine
        self.iso = iso
        self.devroot = devroot
        self.clock = clock
        self.server_info: ServerInfo | None = None
        self.result: Finished | None = None
        self.converting = False

    def heading(self, what: str) -> str:
        return f"p2v (pyv2v {__version__}) - {what}"

    def on_mount(self) -> None:
        from .connection import ConnectionScreen
        self.push_screen(ConnectionScreen())

    def start_conversion(self, cfg: Config) -> None:
        from .running import RunningScreen
        self.cfg = cfg
        self.push_screen(RunningScreen(cfg))

    def exit_code(self) -> int:
        return 0 if self.result is None or self.result.ok else 1

    def from_thread(self, screen: Widget, fn: Callable[..., object], *args: object) -> None:
        """From a worker thread: run fn(*args) in the UI loop (and wait for it), unless the
        screen or the whole app has gone meanwhile (the operator quit during a test)."""
        def guarded() -> None:
            if screen.is_attached:
                fn(*args)
        try:
            self.call_from_thread(guarded)
        except RuntimeError:  # the app is not running any more
            pass

    def finish(self) -> None:
        code = self.exit_code()
        self.exit(code, return_code=code)

    def action_quit_p2v(self) -> None:
        if not self.converting:
            self.finish()
            return
        from .running import RunningScreen
        screen = self.screen
        if isinstance(screen, RunningScreen):
            screen.ask_cancel(then_quit=True)
