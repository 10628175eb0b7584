"""80x25 snapshots of every screen (plain text, compared with tests/golden/tui/*.txt).

ASCII mode (TERM=linux, --ascii) must be pure ASCII; the Unicode mode uses box drawing.
`PYV2V_UPDATE_GOLDEN=1` rewrites the golden files and the SVG screenshots in docs/
(docs/tui-connection.svg, docs/tui-conversion.svg, docs/tui-running.svg); review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyv2v.p2v.tui.glyphs import screen_text, want_ascii

from .test_tui_support import FakeEngine, base_config, drive, make_app, push, text_of, until

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "tui"
DOCS = ROOT / "docs"
UPDATE = os.environ.get("PYV2V_UPDATE_GOLDEN") == "1"


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name}: screen differs from {path}:\n{text}"
    lines = text.splitlines()
    assert len(lines) <= 25 and all(len(line) <= 80 for line in lines)


def shoot(app: object, name: str) -> None:
    if UPDATE and not app.ascii:  # type: ignore[attr-defined]
        DOCS.mkdir(exist_ok=True)
        app.save_screenshot(filename=f"tui-{name}.svg", path=str(DOCS))  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["ascii", "unicode"])
def test_every_screen_at_80x25(tmp_path: Path, mode: str) -> None:
    engine = FakeEngine(hold=True)
    cfg = base_config(server="conv.example.com", password="secret")
    app = make_app(tmp_path, engine, cfg, ascii=mode == "ascii")
    shots: dict[str, str] = {}

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await push(pilot, "#test")
        await until(pilot, lambda: app.screen.query_one("#hostkey-box").has_class("-shown"))
        shots["hostkey"] = await text_of(pilot)
        await push(pilot, "#accept")
        await until(pilot, lambda: app.server_info is not None)
        app.screen.query_one("#server").focus()
        await pilot.pause()
        shots["connection"] = await text_of(pilot)
        shoot(app, "connection")
        await push(pilot, "#next")
        await pilot.pause()
        shots["conversion"] = await text_of(pilot)
        shoot(app, "conversion")
        app.screen.query_one("#output_type").focus()
        await pilot.press("enter")  # the output driver list, from the server's features
        shots["outputs"] = await text_of(pilot)
        await pilot.press("escape")
        await push(pilot, "#start")
        await until(pilot, lambda: bool(engine.conversions))
        await until(pilot, engine.conversions[0].running.is_set)
        await until(pilot, lambda: "Copying" in screen_text(app))
        shots["running"] = await text_of(pilot)
        shoot(app, "running")
        await push(pilot, "#cancel")
        shots["confirm"] = await text_of(pilot)
        await pilot.press("left", "enter")
        await until(pilot, lambda: app.result is not None)
        await pilot.pause()
        shots["cancelled"] = await text_of(pilot)

    drive(app, script)
    for name, text in shots.items():
        check(f"{name}-{mode}", text)
        if mode == "ascii":
            assert text.isascii(), f"{name}: non-ASCII characters in ASCII mode"
    assert "secret" not in "".join(shots.values())
    if mode == "unicode":
        assert "╭" in shots["connection"]


def test_ascii_mode_choice() -> None:
    assert want_ascii(None, "linux") and want_ascii(None, "vt220")
    assert not want_ascii(None, "xterm-256color") and not want_ascii(None, None)
    assert want_ascii(True, "xterm") and not want_ascii(False, "linux")
