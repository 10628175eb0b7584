"""Kernel mode: the signal that cancels a conversion sets p2v's exit status (128 + N), as the
errors.py table says — SIGTERM 143, SIGHUP 129, SIGINT 130 — also when a second one arrives."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from pyv2v.errors import Cancelled
from pyv2v.p2v import cli
from pyv2v.p2v.config import Config
from pyv2v.p2v.events import Finished, Observer
from pyv2v.p2v.hardware import Hardware

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class FakeConversion:
    """Receives `signals` (delivered to this process) while it runs, like a real run would."""

    def __init__(self, signals: list[int]) -> None:
        self.signals = signals
        self.cancelled = False

    def subscribe(self, fn: Observer) -> None:
        pass

    def cancel(self) -> None:
        self.cancelled = True

    def run(self) -> Finished:
        for sig in self.signals:
            os.kill(os.getpid(), sig)  # the handler runs in this (main) thread, right here
        return Finished(False, None, "conversion cancelled by user", None, self.cancelled)


class FakeEngine:
    def __init__(self, conv: FakeConversion) -> None:
        self.conv = conv
        self.hooks: list[str] = []

    def conversion(self, cfg: Config, hw: Hardware | None) -> FakeConversion:
        return self.conv

    def run_hook(self, stage: str, cmd: str | None) -> None:
        self.hooks.append(stage)


@pytest.fixture(autouse=True)
def keep_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in SIGNALS}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def run_kernel_mode(signals: list[int]) -> tuple[Cancelled, FakeEngine]:
    engine = FakeEngine(FakeConversion(signals))
    with pytest.raises(Cancelled) as e:
        cli.kernel_mode(Config(server="conv"), Hardware(), engine)  # type: ignore[arg-type]
    return e.value, engine


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                      (signal.SIGINT, 130)])
def test_cancelling_signal_sets_the_exit_status(sig: int, code: int) -> None:
    e, engine = run_kernel_mode([sig])
    assert e.exit_code == code
    assert engine.conv.cancelled and engine.hooks == ["p2v.pre", "p2v.fail"]


def test_second_signal_keeps_the_first_ones_status() -> None:
    e, _ = run_kernel_mode([signal.SIGTERM, signal.SIGINT])
    assert e.exit_code == 143


def test_main_exits_143_on_sigterm(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    def fake_main(ns: Any) -> int:
        return cli.kernel_mode(Config(server="conv"), Hardware(),
                               FakeEngine(FakeConversion([signal.SIGTERM])))  # type: ignore[arg-type]

    monkeypatch.setattr(cli, "_main", fake_main)
    assert cli.main([]) == 143
    assert "cancelled" in capsys.readouterr().err
