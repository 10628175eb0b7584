"""The one exit-status convention (errors.py) through p2v's main(): usage, error, internal
error, interrupt.  (v2v's main() is covered in test_v2v_cli.py.)"""

from __future__ import annotations

import argparse
import signal

import pytest

from pyv2v import errors
from pyv2v.p2v import cli as p2v_cli


def test_signal_statuses() -> None:
    assert errors.exit_code_for_signal("SIGINT") == 130
    assert errors.exit_code_for_signal(signal.SIGTERM) == 143
    assert errors.exit_code_for_signal("SIGHUP") == 129
    assert errors.exit_code_for_signal(None) == 130
    assert errors.Cancelled().exit_code == 130
    assert errors.Cancelled("x", "SIGTERM").exit_code == 143


@pytest.mark.parametrize("exc,code,needle", [
    (errors.V2VError("cannot connect to conv: refused"), 1, "cannot connect to conv"),
    (errors.UsageError("--port 0: out of range"), 2, "--port 0"),
    (RuntimeError("boom"), 70, "internal error: RuntimeError: boom"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (errors.Cancelled("cancelled by SIGTERM", signal.SIGTERM), 143, "cancelled by SIGTERM"),
])
def test_p2v_exit_paths(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                        exc: BaseException, code: int, needle: str) -> None:
    def boom(ns: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(p2v_cli, "_main", boom)
    assert p2v_cli.main([]) == code
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_p2v_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        p2v_cli.main(["--frobnicate"])
    assert e.value.code == errors.EXIT_USAGE
    assert "unrecognized arguments" in capsys.readouterr().err
