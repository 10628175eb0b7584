"""The connection screen: where the conversion server is, how to log in, and whether it works.

"Test connection" validates the fields inline, then settles the server's host key BEFORE any
login: a pinned key (p2v.hostkey) is checked by the engine; a key already in our known_hosts is
shown and enforced by ssh; a new key is read with ssh-keyscan and shown, and nothing goes further
until the operator accepts it (it then becomes the pin, visible in "Host key pin").  The test
itself shows virt-v2v's version, features and output drivers, or the exact reason it failed.
"Next" is enabled only after a successful test with the current settings.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Static

from ...errors import V2VError
from ..config import Config
from ..engine import HostKeyFp, preferred
from ..events import Event, HostKey, Status
from ..remote import ServerInfo
from .app import bottom_bar
from .fields import Field, collect
from .glyphs import plain

if TYPE_CHECKING:
    from .app import P2VApp

FIELDS = [("server", "Server"), ("port", "SSH port"), ("username", "User name"),
          ("password", "Password"), ("identity", "Identity URL"), ("hostkey", "Host key pin"),
          ("sudo", "Use sudo -n to run virt-v2v on the server")]
SHOWN_FEATURES = 10


class ConnectionScreen(Screen[None]):
    BINDINGS = [Binding("down", "app.focus_next", show=False),
                Binding("up", "app.focus_previous", show=False)]
    DEFAULT_CSS = """
    #hostkey-box { display: none; }
    #hostkey-box.-shown { display: block; }
    #result { height: auto; padding: 0 1; }
    """

    @property
    def p2v(self) -> P2VApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        cfg = self.p2v.cfg
        self.fields = [Field(attr, label, getattr(cfg, attr), password=attr == "password")
                       for attr, label in FIELDS]
        yield Static(self.p2v.heading("connect to the conversion server"), classes="title")
        with Vertical(classes="box", id="server-box") as box:
            box.border_title = "Conversion server"
            yield from self.fields
        with Horizontal(classes="buttons"):
            yield Button("Test connection", id="test", compact=True)
            yield Button("Next >", id="next", compact=True, disabled=True)
        with Vertical(id="hostkey-box", classes="box warn") as hk:
            hk.border_title = "New host key"
            yield Static("", id="hostkey-text")
            with Horizontal(classes="buttons"):
                yield Button("Accept key", id="accept", compact=True)
                yield Button("Reject", id="reject", compact=True)
        yield Static("", id="result")
        yield bottom_bar("Tab/Up/Down: move  Enter: press/next  Space: toggle  Ctrl+Q: quit")

    def on_mount(self) -> None:
        self.pending: Config | None = None
        self.keys: list[HostKeyFp] = []
        self.query_one("#server", Input).focus()

    # ---- small helpers ---------------------------------------------------------------
    def say(self, text: str, cls: str = "") -> None:
        result = self.query_one("#result", Static)
        result.set_classes(cls)
        result.update(Text(text))  # server text: never markup

    def busy(self, on: bool) -> None:
        self.query_one("#test", Button).disabled = on

    def show_hostkey(self, text: str | None) -> None:
        box = self.query_one("#hostkey-box")
        box.set_class(text is not None, "-shown")
        self.query_one("#hostkey-text", Static).update(Text(text or ""))

    def on_descendant_focus(self) -> None:
        focused = self.focused
        field = next((f for f in self.fields if focused is f.editor), None)
        self.query_one("#help", Static).update(plain(self.app, field.help if field else ""))

    @on(Input.Submitted)
    def next_field(self) -> None:
        self.focus_next()

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def settings_changed(self) -> None:
        if self.p2v.server_info is not None:
            self.p2v.server_info = None
            self.query_one("#next", Button).disabled = True
            self.say("Settings changed: test the connection again.")

    # ---- test connection ---------------------------------------------------------------
    @on(Button.Pressed, "#test")
    def test(self) -> None:
        cfg = copy.deepcopy(self.p2v.cfg)
        if not collect(self.fields, cfg):
            self.say("Please correct the values marked in red.", "bad")
            return
        self.pending = cfg
        self.busy(True)
        self.show_hostkey(None)
        self.say(f"Reading the host key of {cfg.server}:{cfg.port} ...")
        self.run_worker(lambda: self._keys_worker(cfg), thread=True, group="connection")

    def _keys_worker(self, cfg: Config) -> None:
        engine = self.p2v.engine
        try:
            if cfg.hostkey:
                keys, new = [("pinned", cfg.hostkey)], False
            else:
                keys = engine.recorded_keys(cfg)
                new = not keys
                if new:
                    keys = engine.scan_keys(cfg)
        except V2VError as e:
            self.p2v.from_thread(self, self.failed, str(e))
            return
        except Exception as e:  # noqa: BLE001 - a bug: still shown, never a crash of the UI
            self.p2v.from_thread(self, self.failed, f"internal error: {type(e).__name__}: {e}")
            return
        self.p2v.from_thread(self, self.got_keys, cfg, keys, new)

    def got_keys(self, cfg: Config, keys: list[HostKeyFp], new: bool) -> None:
        if new:
            self.keys = keys
            lines = "\n".join(f"  {kind} {fp}" for kind, fp in keys)
            self.show_hostkey(f"{cfg.server}:{cfg.port} offers a key never seen before:\n"
                              f"{lines}\nCompare it with the server's; accept to pin it.")
            self.say("Waiting for the host key to be accepted.")
            self.query_one("#accept", Button).focus()
            return
        how = "pinned" if cfg.hostkey else "recorded"
        self.say(f"Host key ({how}): {', '.join(f'{k} {fp}' for k, fp in keys)}\n"
                 f"Testing the connection to {cfg.username}@{cfg.server}:{cfg.port} ...")
        self.run_worker(lambda: self._test_worker(cfg), thread=True, group="connection")

    @on(Button.Pressed, "#accept")
    def accept(self) -> None:
        if self.pending is None or not self.keys:
            return
        fp = preferred(self.keys)[1]
        self.pending.hostkey = fp
        self.query_one("#hostkey", Input).value = fp
        self.show_hostkey(None)
        self.got_keys(self.pending, [("pinned", fp)], False)

    @on(Button.Pressed, "#reject")
    def reject(self) -> None:
        self.show_hostkey(None)
        self.failed("Host key rejected: not connecting. Pin the expected key in "
                    "\"Host key pin\" if you know it.")

    def _test_worker(self, cfg: Config) -> None:
        def observe(event: Event) -> None:
            self.p2v.from_thread(self, self.on_engine_event, event)
        try:
            info = self.p2v.engine.test_connection(cfg, observe)
        except V2VError as e:
            self.p2v.from_thread(self, self.failed, str(e))
            return
        except Exception as e:  # noqa: BLE001 - a bug: still shown, never a crash of the UI
            self.p2v.from_thread(self, self.failed, f"internal error: {type(e).__name__}: {e}")
            return
        self.p2v.from_thread(self, self.tested, cfg, info)

    def on_engine_event(self, event: Event) -> None:
        if isinstance(event, HostKey) and event.pinned:
            self.say(f"Host key matches the pin {event.fingerprints[0]}; logging in ...")
        elif isinstance(event, Status):
            self.say(event.text + " ...")

    def failed(self, reason: str) -> None:
        self.busy(False)
        self.say(f"Test connection failed: {reason}", "bad")
        self.query_one("#test", Button).focus()

    def tested(self, cfg: Config, info: ServerInfo) -> None:
        self.busy(False)
        self.p2v.cfg = cfg
        self.p2v.server_info = info
        features = sorted(f for f in info.features if ":" not in f and f != "virt-v2v")
        more = f" (+{len(features) - SHOWN_FEATURES})" if len(features) > SHOWN_FEATURES else ""
        self.say(f"Connected: virt-v2v {info.version} on {cfg.username}@{cfg.server}:"
                 f"{cfg.port}\nOutput drivers: {' '.join(info.outputs) or '(none listed)'}\n"
                 f"Features: {' '.join(features[:SHOWN_FEATURES])}{more}", "ok")
        nxt = self.query_one("#next", Button)
        nxt.disabled = False
        nxt.focus()

    @on(Button.Pressed, "#next")
    def next_screen(self) -> None:
        from .conversion_form import ConversionScreen
        if self.p2v.server_info is not None:
            self.app.push_screen(ConversionScreen())
