"""ASCII mode and the few glyphs the UI draws itself.

On a Linux text console (TERM=linux), a serial line or with `--ascii`, the UI must not depend on
Unicode box drawing or block characters: `want_ascii()` decides, `ASCII_CSS` turns every border
into `ascii`, `Check` draws `[X]`/`[ ]` check boxes, `PlainScrollBarRender` draws scroll bar
thumbs with spaces on a coloured background, and `Glyphs` holds the progress bar and password
characters.  `screen_text(app)` renders the current screen as plain text (snapshot tests).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Console
from textual.app import App
from textual.content import Content
from textual.scrollbar import ScrollBarRender
from textual.style import Style
from textual.widgets import Checkbox, Input

ASCII_TERMS = ("linux", "vt100", "vt102", "vt220", "dumb", "ansi")


def want_ascii(flag: bool | None, term: str | None) -> bool:
    """--ascii wins; otherwise ASCII on consoles known to lack Unicode block/box glyphs."""
    if flag is not None:
        return flag
    return (term or "").split("-")[0] in ASCII_TERMS


@dataclass(frozen=True)
class Glyphs:
    bar_done: str
    bar_todo: str
    check_left: str
    check_right: str
    password: str


UNICODE = Glyphs("█", "░", "▐", "▌", "•")
ASCII = Glyphs("#", ".", "[", "]", "*")

# Loaded after every widget's DEFAULT_CSS, so these rules win over the widgets' own borders.
ASCII_CSS = """
Input, Button, SelectCurrent, Checkbox { border: none; }
.box, SelectOverlay { border: ascii $primary; }
.box.warn { border: ascii $warning; }
"""


class PlainScrollBarRender(ScrollBarRender):
    """Scroll bar thumbs made of spaces: no block glyphs (slightly coarser positioning)."""

    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


TRANSLIT = str.maketrans({"⇒": "=>", "→": "->", "…": "...", "≥": ">=", "≤": "<=", "‘": "'",
                          "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "·": "-"})


def plain(app: App[object], text: str) -> str:
    """`text` for display: ASCII only in ASCII mode (unknown characters become '?')."""
    if not getattr(app, "ascii", False) or text.isascii():
        return text
    return text.translate(TRANSLIT).encode("ascii", "replace").decode()


def glyphs_of(app: App[object]) -> Glyphs:
    return ASCII if getattr(app, "ascii", False) else UNICODE


class Check(Checkbox):
    """A check box showing X only when checked (not by colour alone); `[X]` in ASCII mode."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        inner = ("X" if self.value else " ", style)
        if getattr(self.app, "ascii", False):
            return Content.assemble("[", inner, "]")
        side = Style(foreground=style.background, background=self.background_colors[1])
        return Content.assemble((UNICODE.check_left, side), inner, (UNICODE.check_right, side))


class TextInput(Input):
    """An Input whose password mask is ASCII in ASCII mode."""

    @property
    def _value(self):  # type: ignore[no-untyped-def]
        if self.password and getattr(self.app, "ascii", False):
            from rich.text import Text
            return Text("*" * len(self.value), no_wrap=True, overflow="ignore", end="")
        return super()._value


def screen_text(app: App[object]) -> str:
    """The current screen as plain text, one line per row (trailing spaces stripped)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True))
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines[:height]) + "\n"
