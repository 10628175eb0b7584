"""Form fields built from the config field table (config.specs()): one row per setting.

A `Field` shows a label, an editor chosen by the setting's kind (bool → check box, enum or
an offered list → Select, anything else → one-line Input) and an inline error line that is shown
only while the value is invalid.  Parsing is config.parse_value (the same rules as the kernel
command line and the CLI flags), then the table's ranges and guest-name rule
(config.field_problem), plus the UI-level checks in CHECKS; `Field.parse()` returns the value or
None after flagging the error.  The UI only adds labels: kinds, choices and help come from the
table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Select, Static

from ...errors import V2VError
from .. import config
from ..config import Config, Spec
from .glyphs import Check, TextInput

SPECS: dict[str, Spec] = dict(config.specs())
FP_RE = re.compile(r"(SHA256:)?[A-Za-z0-9+/]{43}=?")


def _required(v: str | None) -> str | None:
    return None if v else "required"


def _hostname(v: str | None) -> str | None:
    if not v:
        return "required"
    return "no spaces allowed" if re.search(r"\s", v) else None


def _fingerprint(v: str | None) -> str | None:
    return None if not v or FP_RE.fullmatch(v) else "expected SHA256:<43 base64 chars>"


def _identity(v: str | None) -> str | None:
    if not v or v.startswith(("/", "file://", "https://")):
        return None
    if v.startswith("http://"):
        return "https:// only: a private key never travels in clear"
    return "a file:// or https:// URL or an absolute path"


def _options(v: list[str]) -> str | None:
    bad = [item for item in v if "=" not in item or item.startswith("=")]
    return f"expected key=value, not {bad[0]!r}" if bad else None


def _format(v: str | None) -> str | None:
    return None if not v or re.fullmatch(r"[a-z0-9]+", v) else "a format name, e.g. raw, qcow2"


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "server": _hostname, "username": _required, "identity": _identity,
    "hostkey": _fingerprint, "guestname": _required,
    "output_misc": _options, "output_format": _format, "output_type": _required,
}


def shown(attr: str, value: Any) -> str:
    """A setting's value as the text the user edits."""
    kind = SPECS[attr].kind
    if value is None:
        return ""
    if kind == "list":
        return ",".join(value)
    if kind == "size":
        return config.format_size(value)
    return str(value)


def parse_text(attr: str, text: str) -> Any:
    """Parse like the kernel command line does; empty optional text is None."""
    spec = SPECS[attr]
    text = text.strip()
    if text:  # the table's ranges and rules (port, cores, memory, guest name) are checked
        # below, so that the row says just what is wrong
        value = config.parse_value(replace(spec, minimum=None, maximum=None, rule=None), text)
    elif spec.kind in ("int", "size"):
        raise V2VError("required")
    else:
        value = [] if spec.kind == "list" else None
    error = CHECKS.get(attr, lambda _v: None)(value) or config.field_problem(spec, value)
    if error:
        raise V2VError(error)
    return value


def short_error(e: V2VError, spec: Spec) -> str:
    """config's messages name the kernel key; inline, the row already says which field."""
    text = str(e)
    return text.replace(f"{spec.key}=", "").replace(f" {spec.key}", "")


class FocusMarked:
    """Mixin: the -focused class while a descendant has the focus (styles the row's label).

    (`:focus-within` does not restyle the label, a sibling of the focused widget.)
    """

    def on_descendant_focus(self: Widget) -> None:  # type: ignore[misc]
        self.add_class("-focused")

    def on_descendant_blur(self: Widget) -> None:  # type: ignore[misc]
        self.remove_class("-focused")


class NetRow(FocusMarked, Horizontal):
    """`network [name]` under a NIC."""


class Field(FocusMarked, Vertical):
    """Label + editor on one row, and an error row below it (hidden unless invalid)."""

    DEFAULT_CSS = """
    Field { height: auto; }
    Field > Horizontal { height: 1; }
    Field .label { width: 15; }
    Field.-focused .label { text-style: reverse; }
    Field .error { color: $error; display: none; padding-left: 2; height: auto; }
    Field.-invalid .error { display: block; }
    Field Input, Field Select { width: 1fr; }
    """

    def __init__(self, attr: str, label: str, value: Any, *,
                 choices: Sequence[str] | None = None, password: bool = False) -> None:
        super().__init__(id=f"row-{attr}")
        self.attr = attr
        self.spec = SPECS[attr]
        self.label = label
        self.editor: Widget
        if self.spec.kind == "bool":
            self.editor = Check(label, bool(value), id=attr, compact=True)
        elif choices is not None or self.spec.kind == "enum":
            opts = list(choices if choices is not None else self.spec.choices)
            self.editor = Select([(o, o) for o in opts], value=value if value in opts
                                 else Select.NULL, allow_blank=not opts, id=attr, compact=True)
        else:
            self.editor = TextInput(shown(attr, value), id=attr, password=password,
                                    compact=True, select_on_focus=False)

    def on_mount(self) -> None:
        if isinstance(self.editor, Select) and getattr(self.app, "ascii", False):
            for arrow, text in ((".down-arrow", "v"), (".up-arrow", "^")):
                self.editor.query_one(arrow, Static).update(text)

    def compose(self) -> ComposeResult:
        with Horizontal():
            if self.spec.kind != "bool":
                yield Static(self.label, classes="label")
            yield self.editor
        yield Static("", classes="error")

    @property
    def help(self) -> str:
        flag = f"{self.spec.flag}, " if self.spec.flag else ""
        return f"{self.label.strip()} ({flag}{self.spec.key}){': ' if self.spec.help else ''}" \
               f"{self.spec.help}"

    def raw(self) -> str | bool:
        ed = self.editor
        if isinstance(ed, Check):
            return bool(ed.value)
        if isinstance(ed, Select):
            return "" if ed.value is Select.NULL else str(ed.value)
        assert isinstance(ed, TextInput)
        return ed.value

    def flag(self, error: str | None) -> None:
        self.set_class(error is not None, "-invalid")
        self.query_one(".error", Static).update(f"^ {error}" if error else "")

    def parse(self) -> tuple[bool, Any]:
        """(ok, value); an invalid value is flagged inline."""
        raw = self.raw()
        if isinstance(raw, bool):
            self.flag(None)
            return True, raw
        try:
            value = parse_text(self.attr, raw)
        except V2VError as e:
            self.flag(short_error(e, self.spec))
            return False, None
        self.flag(None)
        return True, value


def collect(fields: Sequence[Field], cfg: Config) -> bool:
    """Parse every field (flagging all errors at once); on success store them into cfg."""
    results = [(f, *f.parse()) for f in fields]
    if not all(ok for _, ok, _ in results):
        return False
    for f, _, value in results:
        setattr(cfg, f.attr, value)
    return True
