"""Conversion and running screens (Pilot, fake engine): validation, choices, cancel, power."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, Input, Select, Static

from pyv2v.p2v.tui.app import P2VApp
from pyv2v.p2v.tui.glyphs import Check

from .test_tui_support import FakeEngine, base_config, drive, make_app, push, text_of, until


async def to_conversion_screen(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await push(pilot, "#test")
    await until(pilot, lambda: app.server_info is not None)
    await push(pilot, "#next")
    await pilot.pause()
    assert type(app.screen).__name__ == "ConversionScreen"


async def start(pilot) -> None:  # type: ignore[no-untyped-def]
    await to_conversion_screen(pilot)
    await push(pilot, "#start")
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "RunningScreen")


def app_for(tmp: Path, engine: FakeEngine, **kw: object) -> P2VApp:
    return make_app(tmp, engine, base_config(server="conv", **kw.pop("cfg", {})), **kw)


def test_invalid_values_flagged_inline_before_starting(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True)
    app = app_for(tmp_path, engine)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await to_conversion_screen(pilot)
        s = app.screen
        for attr, value in (("guestname", "my guest"), ("cores", "0"), ("memory", "lots"),
                            ("output_misc", "novalue"), ("output_format", "QCOW 2")):
            s.query_one(f"#{attr}", Input).value = value
        s.query_one("#disk-0", Check).value = False
        s.query_one("#disk-1", Check).value = False
        s.query_one("#net-0", Input).value = "two words"
        await push(pilot, "#start")
        await pilot.pause()
        bad = {f.attr for f in s.fields if f.has_class("-invalid")}
        assert bad == {"guestname", "cores", "memory", "output_misc", "output_format"}
        assert "cannot parse" in str(s.query_one("#row-memory .error", Static).render())
        assert s.query_one("#disks-error").has_class("-shown")
        assert s.query_one("#net-0-error").has_class("-shown")
        assert not s.query_one("#net-1-error").has_class("-shown")
        text = await text_of(pilot)
        assert "^ select at least one disk" in text and "^ must be between 1 and 4096" in text
        assert engine.conversions == [] and type(app.screen).__name__ == "ConversionScreen"
        # A NIC that is not converted needs no valid network name.
        s.query_one("#nic-0", Check).value = False
        for attr, value in (("guestname", "guest1"), ("cores", "2"), ("memory", "2G"),
                            ("output_misc", "a=1,b=2"), ("output_format", "qcow2")):
            s.query_one(f"#{attr}", Input).value = value
        s.query_one("#disk-1", Check).value = True
        s.query_one("#net-1", Input).value = "ovirtmgmt"
        await push(pilot, "#start")
        await until(pilot, lambda: bool(engine.conversions))
        cfg = engine.conversions[0].cfg
        assert (cfg.guestname, cfg.cores, cfg.memory) == ("guest1", 2, 2 << 30)
        assert cfg.disks == ["sdb"] and cfg.interfaces == ["eth1"]
        assert cfg.network_map == ["eth1:ovirtmgmt"] and cfg.removable == ["sr0"]
        assert cfg.output_misc == ["a=1", "b=2"] and cfg.output_format == "qcow2"

    drive(app, script)


def test_output_driver_offered_from_server_features_by_keyboard(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True)
    app = app_for(tmp_path, engine, cfg={"network_map": ["eth0:prod", "lab"]})

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await to_conversion_screen(pilot)
        s = app.screen
        sel = s.query_one("#output_type", Select)
        assert sel.value == "local"
        assert [str(o[0]) for o in sel._options] == engine.test_connection(
            base_config(server="x"), lambda e: None).outputs
        assert s.query_one("#net-0", Input).value == "prod"
        assert s.query_one("#net-1", Input).value == "lab"  # the default entry
        sel.focus()
        await pilot.press("enter")  # open the list
        await pilot.press("down")  # local -> null
        await pilot.press("enter")
        await pilot.pause()
        assert sel.value == "null"
        oa = s.query_one("#output_allocation", Select)
        assert [str(o[0]) for o in oa._options] == ["none", "sparse", "preallocated"]
        await push(pilot, "#start")
        await until(pilot, lambda: bool(engine.conversions))
        assert engine.conversions[0].cfg.output_type == "null"

    drive(app, script)


def test_successful_run_shows_progress_log_and_final_status(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True)
    app = app_for(tmp_path, engine)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await start(pilot)
        await until(pilot, lambda: app.result is not None)
        text = await text_of(pilot)
        assert "100%  16.0G / 16.0G" in text and "Finishing off" in text
        assert "Conversion finished successfully." in text
        assert "/tmp/virt-p2v-20240101-abcdefgh" in text
        assert not app.screen.query_one("#cancel", Button).display
        assert not app.screen.query("#reboot")  # not in --iso mode
        await pilot.press("enter")  # Quit has the focus
        await pilot.pause()
        assert app.return_code == 0

    drive(app, script)


def test_cancel_needs_confirmation_then_really_cancels(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True, hold=True)
    app = app_for(tmp_path, engine)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await start(pilot)
        conv = engine.conversions[0]
        await until(pilot, conv.running.is_set)
        assert app.focused is app.screen.query_one("#cancel")
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmDialog"
        assert app.focused is app.screen.query_one("#no")  # the safe answer first
        await pilot.press("enter")  # No
        await pilot.pause()
        assert type(app.screen).__name__ == "RunningScreen" and not conv.cancelled.is_set()
        await pilot.press("enter")  # Cancel again
        await pilot.pause()
        await pilot.press("escape")  # Esc = No
        await pilot.pause()
        assert not conv.cancelled.is_set()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("left", "enter")  # Yes, cancel it
        await until(pilot, lambda: app.result is not None)
        assert conv.cancelled.is_set() and app.result is not None and app.result.cancelled
        text = await text_of(pilot)
        assert "Cancelled" in text and "conversion cancelled by user" in text
        await push(pilot, "#again")  # back to the settings, start again
        assert type(app.screen).__name__ == "ConversionScreen"
        await push(pilot, "#start")
        await until(pilot, lambda: len(engine.conversions) == 2)
        engine.conversions[1].cancel()
        await until(pilot, lambda: app.result is not None and not app.converting)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.return_code == 1

    drive(app, script)


def test_quit_while_running_cancels_first(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True, hold=True)
    app = app_for(tmp_path, engine)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await start(pilot)
        await until(pilot, engine.conversions[0].running.is_set)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmDialog" and app.return_code is None
        await pilot.press("left", "enter")
        await until(pilot, lambda: app.return_code is not None)
        assert engine.conversions[0].cancelled.is_set() and app.return_code == 1

    drive(app, script)


def test_failure_and_iso_power_actions(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True, fail=True)
    app = app_for(tmp_path, engine, iso=True)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await start(pilot)
        await until(pilot, lambda: app.result is not None)
        assert "exit code 3" in (await text_of(pilot)) and "Failed" in (await text_of(pilot))
        assert app.focused is app.screen.query_one("#reboot")
        await pilot.press("right", "enter")  # Power off
        await until(pilot, lambda: engine.powered == ["poweroff"])
        await pilot.press("left", "enter")  # Reboot
        await until(pilot, lambda: engine.powered == ["poweroff", "reboot"])

    drive(app, script)


def test_engine_bug_is_shown_not_a_crash(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True)
    app = app_for(tmp_path, engine)

    def broken_run() -> None:
        raise KeyError("oops")

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await to_conversion_screen(pilot)
        original = engine.conversion

        def conversion(cfg, hw):  # type: ignore[no-untyped-def]
            conv = original(cfg, hw)
            conv.run = broken_run  # type: ignore[method-assign]
            return conv

        engine.conversion = conversion  # type: ignore[method-assign]
        await push(pilot, "#start")
        await until(pilot, lambda: app.result is not None)
        assert "internal error: KeyError" in (await text_of(pilot))
        assert app.is_running

    drive(app, script)
