"""The conversion screen: what the guest looks like, what to convert, where it goes.

Left: guest name, vCPUs, "copy physical topology", memory, then the output settings (-o from
the server's output drivers, -oa, -of, -os, -oc, extra -oo).  Right: fixed disks (size, model,
serial) and removable media as check lists, and the NICs (MAC, link state) each with the
network it maps to (p2v.network entries `if:net`).  "Start conversion" flags every invalid
value inline and starts nothing until all are valid.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from ..config import Config
from .app import bottom_bar
from .devices import disk_info, human_size, nic_info
from .fields import Field, NetRow, collect
from .glyphs import Check, TextInput, plain

if TYPE_CHECKING:
    from .app import P2VApp

TARGET = [("guestname", "Name"), ("cores", "vCPUs"),
          ("phys_topo", "Copy physical CPU topology"), ("memory", "Memory")]
OUTPUT = [("output_type", "Output -o"), ("output_allocation", "Allocation -oa"),
          ("output_format", "Format -of"), ("output_storage", "Storage -os"),
          ("output_connection", "Connect. -oc"), ("output_misc", "Options -oo")]
NET_RE = re.compile(r"[^\s:,]+")
ROW = 32  # characters of a device description in the right column


def _fit(text: str, width: int = ROW) -> str:
    return text if len(text) <= width else text[:width - 1] + "~"


def _union(*lists: list[str]) -> list[str]:
    return list(dict.fromkeys(x for lst in lists for x in lst))


def initial_networks(network_map: list[str], nics: list[str]) -> dict[str, str]:
    """Per-NIC network names from p2v.network entries (`if:net`, or `net` as the default)."""
    default = next((e for e in network_map if ":" not in e), "default")
    explicit = dict(e.split(":", 1) for e in network_map if ":" in e)
    return {nic: explicit.get(nic, default) for nic in nics}


def output_choices(outputs: list[str], current: str) -> tuple[list[str], str]:
    """The server's output drivers, and the one to preselect (local and disk are one)."""
    if not outputs:
        return [current], current
    for name in (current, {"local": "disk", "disk": "local"}.get(current, "")):
        if name in outputs:
            return outputs, name
    return outputs, outputs[0]


class ConversionScreen(Screen[None]):
    BINDINGS = [Binding("down", "app.focus_next", show=False),
                Binding("up", "app.focus_previous", show=False),
                Binding("escape", "back", "Back", show=False)]
    DEFAULT_CSS = """
    #columns { height: 1fr; }
    #left { width: 38; }
    #right { width: 1fr; }
    #right .box { height: auto; }
    .devices { height: auto; }
    .netrow { height: 1; padding-left: 4; }
    .netrow Static { width: 9; }
    .netrow Input { width: 1fr; }
    .error { color: $error; height: 1; display: none; }
    .error.-shown { display: block; }
    .netrow.-focused Static { text-style: reverse; }
    """

    @property
    def p2v(self) -> P2VApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app, cfg = self.p2v, self.p2v.cfg
        hw = app.hw
        outputs, chosen = output_choices(list(app.server_info.outputs)
                                         if app.server_info else [], cfg.output_type)
        self.fields = [Field(a, label, getattr(cfg, a)) for a, label in TARGET]
        self.fields += [Field(a, label, chosen if a == "output_type" else getattr(cfg, a),
                              choices=outputs if a == "output_type" else None)
                        for a, label in OUTPUT]
        self.disks = _union(hw.disks if hw else [], cfg.disks)
        self.removables = _union(hw.removable if hw else [], cfg.removable)
        self.nics = _union(hw.interfaces if hw else [], cfg.interfaces)
        nets = initial_networks(cfg.network_map, self.nics)
        macs = hw.macs if hw else {}
        yield Static(app.heading(f"conversion settings for {cfg.server}"), classes="title")
        with Horizontal(id="columns"):
            with VerticalScroll(id="left"):
                with Vertical(classes="box") as box:
                    box.border_title = "Target properties"
                    yield from self.fields[:len(TARGET)]
                with Vertical(classes="box") as box:
                    box.border_title = "Output (virt-v2v options)"
                    yield from self.fields[len(TARGET):]
            with VerticalScroll(id="right"):
                with Vertical(classes="box devices") as box:
                    box.border_title = "Fixed disks"
                    for i, d in enumerate(self.disks):
                        info = disk_info(d, app.devroot)
                        name = d if len(d) <= 12 else "~" + d[-11:]
                        text = f"{name} {human_size(info.size)} {info.model} {info.serial}"
                        yield Check(_fit(text.strip()), d in cfg.disks, id=f"disk-{i}",
                                    compact=True)
                    yield Static("^ select at least one disk", id="disks-error",
                                 classes="error")
                with Vertical(classes="box devices") as box:
                    box.border_title = "Removable media"
                    for i, r in enumerate(self.removables):
                        yield Check(r, r in cfg.removable, id=f"removable-{i}", compact=True)
                    if not self.removables:
                        yield Static("(none)")
                with Vertical(classes="box devices") as box:
                    box.border_title = "Network interfaces"
                    for i, n in enumerate(self.nics):
                        nic = nic_info(n, macs, app.devroot)
                        yield Check(_fit(f"{n} {nic.mac} {nic.link}"), n in cfg.interfaces,
                                    id=f"nic-{i}", compact=True)
                        with NetRow(classes="netrow"):
                            yield Static("network")
                            yield TextInput(nets[n], id=f"net-{i}", compact=True)
                        yield Static("", id=f"net-{i}-error", classes="error")
                    if not self.nics:
                        yield Static("(none)")
        with Horizontal(classes="buttons"):
            yield Button("< Back", id="back", compact=True)
            yield Button("Start conversion", id="start", compact=True)
        yield bottom_bar("Tab/Up/Down: move  Space: toggle  Enter: choose/press  Esc: back  "
                         "Ctrl+Q: quit")

    def on_mount(self) -> None:
        self.fields[0].editor.focus()

    def on_descendant_focus(self) -> None:
        focused = self.focused
        field = next((f for f in self.fields if focused is f.editor), None)
        text = field.help if field else ""
        if focused is not None and (focused.id or "").startswith("net-"):
            text = "network on the conversion server for this NIC (p2v.network if:net)"
        self.query_one("#help", Static).update(plain(self.app, text))

    @on(Input.Submitted)
    def next_field(self) -> None:
        self.focus_next()

    def action_back(self) -> None:
        self.app.pop_screen()

    @on(Button.Pressed, "#back")
    def back(self) -> None:
        self.action_back()

    def checked(self, prefix: str, names: list[str]) -> list[str]:
        return [n for i, n in enumerate(names) if self.query_one(f"#{prefix}-{i}", Check).value]

    def build(self) -> Config | None:
        """The configuration from the form, or None after flagging what is invalid."""
        cfg = copy.deepcopy(self.p2v.cfg)
        ok = collect(self.fields, cfg)
        cfg.disks = self.checked("disk", self.disks)
        self.query_one("#disks-error").set_class(not cfg.disks, "-shown")
        ok = ok and bool(cfg.disks)
        cfg.removable = self.checked("removable", self.removables)
        cfg.interfaces = self.checked("nic", self.nics)
        network_map = []
        for i, n in enumerate(self.nics):
            net = self.query_one(f"#net-{i}", TextInput).value.strip()
            bad = not NET_RE.fullmatch(net) and n in cfg.interfaces
            err = self.query_one(f"#net-{i}-error", Static)
            err.update("    ^ a name without spaces, ':' or ','" if bad else "")
            err.set_class(bad, "-shown")
            ok = ok and not bad
            if n in cfg.interfaces:
                network_map.append(f"{n}:{net}")
        cfg.network_map = network_map
        return cfg if ok else None

    @on(Button.Pressed, "#start")
    def start(self) -> None:
        cfg = self.build()
        if cfg is None:
            self.query_one("#help", Static).update("Please correct the values marked in red.")
            return
        self.p2v.start_conversion(cfg)
