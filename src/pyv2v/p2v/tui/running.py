"""The running screen: per-disk progress, elapsed time, the live log, cancel, final status.

On mount it asks the engine for a conversion and runs it in a worker thread; every engine event
comes back through `call_from_thread` and is rendered here.  Cancel (button, or Ctrl+Q) asks for
confirmation, then calls the engine's thread-safe `cancel()`; the screen stays until the engine's
own `Finished` event says it is over.  The final status shows the remote log directory, and in
--iso mode Reboot / Power off buttons run the engine's power actions; "< Settings" goes back
to the conversion screen to try again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Log, Static

from ...errors import V2VError
from ..config import Config
from ..engine import ConversionLike
from ..events import DiskProgress, Event, Finished, HostKey, LogDir, RemoteLine, Status
from .app import bottom_bar
from .devices import disk_info, human_size
from .glyphs import glyphs_of

if TYPE_CHECKING:
    from .app import P2VApp

BAR = 28


class ConfirmDialog(ModalScreen[bool]):
    """Yes/No; the safe answer (No) has the focus, Esc means No."""

    BINDINGS = [Binding("escape", "no", show=False),
                Binding("left,up", "app.focus_previous", show=False),
                Binding("right,down", "app.focus_next", show=False)]
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    #dialog { width: 56; background: $surface; }
    #dialog .buttons { margin-top: 1; }
    """

    def __init__(self, question: str, yes: str, no: str) -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="box warn"):
            yield Static(self.question)
            with Horizontal(classes="buttons"):
                yield Button(self.yes, id="yes", compact=True)
                yield Button(self.no, id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_no(self) -> None:
        self.dismiss(False)


def progress_line(disk: str, done: int, total: int, bar_done: str, bar_todo: str) -> str:
    frac = min(1.0, done / total) if total > 0 else 0.0
    n = int(frac * BAR)
    name = disk if len(disk) <= 10 else "~" + disk[-9:]
    of = f" / {human_size(total)}" if total > 0 else ""
    return f"{name:<10} {bar_done * n}{bar_todo * (BAR - n)} {frac * 100:3.0f}%  " \
           f"{human_size(done)}{of}"


class RunningScreen(Screen[None]):
    BINDINGS = [Binding("left", "app.focus_previous", show=False),
                Binding("right", "app.focus_next", show=False)]
    DEFAULT_CSS = """
    #status { height: 1; padding: 0 1; }
    #progress { height: auto; max-height: 6; padding: 0 1; }
    #final { height: auto; padding: 0 1; display: none; }
    #final.-shown { display: block; }
    .after { display: none; }
    .done .after { display: block; }
    .done #cancel { display: none; }
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv: ConversionLike | None = None
        self.started = 0.0
        self.ended: float | None = None
        self.state = "Starting"
        self.quit_when_done = False
        self.rows: dict[str, Static] = {}

    @property
    def p2v(self) -> P2VApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        cfg = self.cfg
        yield Static(self.p2v.heading(f"converting {cfg.guestname} on {cfg.server} "
                                      f"(-o {cfg.output_type})"), classes="title")
        yield Static("", id="status")
        with Vertical(id="progress"):
            for disk in cfg.disks:
                size = disk_info(disk, self.p2v.devroot).size or 0
                self.rows[disk] = Static(self.bar(disk, 0, size))
                yield self.rows[disk]
        log = Log(id="log", max_lines=5000, classes="box")
        log.border_title = "Conversion log"
        yield log
        yield Static("", id="final")
        with Horizontal(classes="buttons"):
            yield Button("Cancel conversion", id="cancel", compact=True)
            if self.p2v.iso:
                yield Button("Reboot", id="reboot", compact=True, classes="after")
                yield Button("Power off", id="poweroff", compact=True, classes="after")
            yield Button("< Settings", id="again", compact=True, classes="after")
            yield Button("Quit", id="quit", compact=True, classes="after")
        yield bottom_bar("Tab/Left/Right: move  Enter: press  Up/Down/PgUp/PgDn: log  "
                         "Ctrl+Q: quit", help=False)

    def bar(self, disk: str, done: int, total: int) -> str:
        g = glyphs_of(self.app)
        return progress_line(disk, done, total, g.bar_done, g.bar_todo)

    def on_mount(self) -> None:
        self.started = self.p2v.clock()
        self.p2v.converting = True
        self.conv = self.p2v.engine.conversion(self.cfg, self.p2v.hw)
        self.conv.subscribe(self.observe)
        self.query_one("#cancel", Button).focus()
        self.tick()
        self.set_interval(1.0, self.tick)
        self.run_worker(self._work, thread=True, group="conversion")

    def _work(self) -> None:
        assert self.conv is not None
        try:
            self.conv.run()  # its Finished event ends the screen's run
        except Exception as e:  # noqa: BLE001 - a bug in the engine: shown, the UI survives
            self.p2v.from_thread(self, self.finished, Finished(
                False, None, f"internal error: {type(e).__name__}: {e}", None))

    def observe(self, event: Event) -> None:  # engine thread
        self.p2v.from_thread(self, self.on_engine_event, event)

    def elapsed(self) -> str:
        secs = int((self.ended or self.p2v.clock()) - self.started)
        return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"

    def tick(self) -> None:
        self.query_one("#status", Static).update(Text(f"Elapsed {self.elapsed()}   {self.state}"))

    def on_engine_event(self, event: Event) -> None:
        log = self.query_one("#log", Log)
        if isinstance(event, Status):
            if not self.state.startswith("Cancelling"):
                self.state = event.text
            log.write_line(f"*** {event.text}")
        elif isinstance(event, RemoteLine):
            log.write_line(event.text)
        elif isinstance(event, LogDir):
            log.write_line(f"*** remote log directory: {event.path}")
        elif isinstance(event, HostKey):
            log.write_line(f"*** host key {', '.join(event.fingerprints)}"
                           f"{' (pinned)' if event.pinned else ''}")
        elif isinstance(event, DiskProgress):
            row = self.rows.get(event.disk)
            if row is not None:
                row.update(self.bar(event.disk, event.done, event.total))
        elif isinstance(event, Finished):
            self.finished(event)
        self.tick()

    def finished(self, result: Finished) -> None:
        self.ended = self.p2v.clock()
        self.p2v.result = result
        self.p2v.converting = False
        self.state = ("Finished" if result.ok else
                      "Cancelled" if result.cancelled else "Failed")
        where = (f"\nRemote log directory (on the server): {result.remote_dir}"
                 if result.remote_dir else "")
        final = self.query_one("#final", Static)
        final.update(Text(f"{result.message}{where}"))  # server text: never markup
        final.set_classes("-shown ok" if result.ok else "-shown bad")
        self.query_one(".buttons").add_class("done")
        self.query_one("#reboot" if self.p2v.iso else "#quit", Button).focus()
        if self.quit_when_done:
            self.p2v.finish()

    # ---- cancel and quit -------------------------------------------------------------
    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.ask_cancel()

    def ask_cancel(self, then_quit: bool = False) -> None:
        if self.ended is not None:
            self.p2v.finish()
            return
        question = ("Cancel the running conversion and quit p2v?" if then_quit else
                    "Cancel the running conversion? The conversion server stops too and "
                    "nothing is kept.")

        def answered(yes: bool | None) -> None:
            if yes and self.conv is not None and self.ended is None:
                self.quit_when_done = self.quit_when_done or then_quit
                self.state = "Cancelling (waiting for the conversion server) ..."
                self.query_one("#cancel", Button).disabled = True
                self.conv.cancel()
                self.tick()

        self.app.push_screen(ConfirmDialog(question, "Yes, cancel it", "No, keep going"),
                             answered)

    @on(Button.Pressed, "#again")
    def again(self) -> None:
        """Back to the conversion settings (e.g. after a failure or a cancel) to try again."""
        self.app.pop_screen()

    @on(Button.Pressed, "#quit")
    def quit_pressed(self) -> None:
        self.p2v.finish()

    @on(Button.Pressed, "#reboot, #poweroff")
    def power_pressed(self, event: Button.Pressed) -> None:
        action = str(event.button.id)
        self.state = {"reboot": "Rebooting", "poweroff": "Powering off"}[action] + " ..."
        self.tick()

        def work() -> None:
            try:
                self.p2v.engine.power(action)
            except V2VError as e:
                self.p2v.from_thread(self, self.power_failed, str(e))

        self.run_worker(work, thread=True, group="power")

    def power_failed(self, reason: str) -> None:
        self.state = f"Failed: {reason}"
        self.tick()
