"""Connection screen (Pilot, fake engine): inline validation, host key acceptance, test result."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, Input, Static

from .test_tui_support import FP, FakeEngine, base_config, drive, make_app, push, text_of, until


def text(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(selector, Static).render())


async def fill(pilot, field: str, value: str) -> None:  # type: ignore[no-untyped-def]
    widget = pilot.app.screen.query_one(f"#{field}", Input)
    widget.value = value
    await pilot.pause()


def test_invalid_values_are_flagged_inline_and_nothing_runs(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = make_app(tmp_path, engine)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await fill(pilot, "server", "")
        await fill(pilot, "port", "x")
        await fill(pilot, "hostkey", "SHA256:short")
        await fill(pilot, "identity", "relative/key")
        await push(pilot, "#test")
        await pilot.pause()
        screen = app.screen
        bad = {f.attr for f in screen.fields if f.has_class("-invalid")}
        assert bad == {"server", "port", "hostkey", "identity"}
        assert "required" in text(app, "#row-server .error")
        assert "expected a number" in text(app, "#row-port .error")
        assert "SHA256:" in text(app, "#row-hostkey .error")
        assert "marked in red" in text(app, "#result")
        await fill(pilot, "port", "70000")
        await push(pilot, "#test")
        await pilot.pause()
        assert "between 1 and 65535" in text(app, "#row-port .error")
        assert engine.scanned == 0 and engine.tested == []
        assert app.screen.query_one("#next", Button).disabled

    drive(app, script)


def test_new_host_key_must_be_accepted_then_is_pinned(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = make_app(tmp_path, engine, base_config(server="conv.example.com"))

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await push(pilot, "#test")
        await until(pilot, lambda: app.screen.query_one("#hostkey-box").has_class("-shown"))
        shown = text(app, "#hostkey-text")
        assert FP in shown and "never seen before" in shown
        assert engine.tested == []  # nothing logs in before the key is accepted
        assert app.focused is app.screen.query_one("#accept")
        await pilot.press("enter")  # accept
        await until(pilot, lambda: app.server_info is not None)
        assert engine.tested[0].hostkey == FP  # ed25519 preferred over the rsa key
        assert app.cfg.hostkey == FP
        assert app.screen.query_one("#hostkey", Input).value == FP
        result = text(app, "#result")
        assert "virt-v2v 2.2.0" in result and "null" in result and "libguestfs-rewrite" in result
        nxt = app.screen.query_one("#next", Button)
        assert not nxt.disabled and app.focused is nxt

    drive(app, script)


def test_rejected_host_key_stops_everything(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = make_app(tmp_path, engine, base_config(server="conv.example.com"))

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await push(pilot, "#test")
        await until(pilot, lambda: app.screen.query_one("#hostkey-box").has_class("-shown"))
        await push(pilot, "#reject")
        await pilot.pause()
        assert "Host key rejected" in text(app, "#result")
        assert engine.tested == [] and app.server_info is None
        assert app.screen.query_one("#next", Button).disabled

    drive(app, script)


def test_recorded_or_pinned_key_skips_the_question(tmp_path: Path) -> None:
    for engine, cfg in ((FakeEngine(recorded=True), base_config(server="s")),
                        (FakeEngine(), base_config(server="s", hostkey=FP))):
        app = make_app(tmp_path, engine, cfg)

        async def script(pilot) -> None:  # type: ignore[no-untyped-def]
            await push(pilot, "#test")
            await until(pilot, lambda: app.server_info is not None)  # noqa: B023
            assert engine.scanned == 0 and len(engine.tested) == 1  # noqa: B023

        drive(app, script)


def test_failure_shows_the_exact_reason(tmp_path: Path) -> None:
    reason = "authentication as root on s:22 failed (password refused)"
    app = make_app(tmp_path, FakeEngine(recorded=True, fail_test=reason),
                   base_config(server="s"))

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await push(pilot, "#test")
        await until(pilot, lambda: "failed" in text(app, "#result"))
        assert text(app, "#result") == f"Test connection failed: {reason}"
        assert app.screen.query_one("#next", Button).disabled
        assert not app.screen.query_one("#test", Button).disabled

    drive(app, script)


def test_changing_a_setting_after_success_requires_a_new_test(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeEngine(recorded=True), base_config(server="s"))

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await push(pilot, "#test")
        await until(pilot, lambda: app.server_info is not None)
        await fill(pilot, "username", "admin")
        assert app.server_info is None
        assert app.screen.query_one("#next", Button).disabled
        assert "test the connection again" in text(app, "#result")

    drive(app, script)


def test_keyboard_only_focus_is_visible_and_password_masked(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeEngine(recorded=True), base_config(server="s"))

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        assert app.focused is app.screen.query_one("#server")
        await pilot.press("down")
        await pilot.pause()
        assert app.focused is app.screen.query_one("#port")
        label = app.screen.query_one("#row-port .label", Static)
        assert label.rich_style.reverse and \
            not app.screen.query_one("#row-server .label", Static).rich_style.reverse
        assert "ssh port" in text(app, "#help").lower() and "p2v.remote.port" in text(app, "#help")
        await pilot.press("down", "down")
        assert app.focused is app.screen.query_one("#password")
        await pilot.press(*"s3cret")
        screen = await text_of(pilot)
        assert "s3cret" not in screen and "******" in screen
        for _ in range(4):  # identity, hostkey, sudo, Test connection
            await pilot.press("tab")
        assert app.focused is app.screen.query_one("#test")
        await pilot.press("enter")
        await until(pilot, lambda: app.server_info is not None)
        assert app.cfg.password == "s3cret"
        await pilot.press("enter")  # Next has the focus
        await pilot.pause()
        assert type(app.screen).__name__ == "ConversionScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConnectionScreen"
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.return_code == 0

    drive(app, script)
