"""The p2v command line: version, help, one-line errors, dump, the poweroff default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pyv2v import __version__
from pyv2v.p2v import cli, config
from pyv2v.p2v.kernel_cmdline import Cmdline


def p2v(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyv2v.p2v.cli", *args], capture_output=True,
                          text=True, timeout=120)


def one_line_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2v: error: ") and needle in lines[0], \
        r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_version() -> None:
    r = p2v("--version")
    assert r.returncode == 0 and r.stdout == f"p2v pyv2v {__version__}\n"


def test_help_has_usage_keys_and_examples() -> None:
    r = p2v("--help")
    assert r.returncode == 0
    for piece in ("usage: p2v", "--cmdline STR", "--disk PATH", "--hostkey", "p2v.server",
                  "examples:", "--dump-config"):
        assert piece in r.stdout


def test_errors_are_one_line() -> None:
    one_line_error(p2v("--no-such-option"), "unrecognized arguments")
    one_line_error(p2v("--cmdline", "p2v.port=x"), "cannot parse p2v.remote.port")
    one_line_error(p2v("--cmdline", ""), "no conversion server given")
    one_line_error(p2v("--cmdline", "p2v.server=x", "--disk", "/nonexistent.img"),
                   "no such file")


def test_dump_config_from_cmdline(tmp_path: Path) -> None:
    img = tmp_path / "d.img"
    img.write_bytes(b"\0" * 512)
    r = p2v("--cmdline", f'p2v.server=conv p2v.password="two words" p2v.o=local '
            f'p2v.disks={img} p2v.oo=a=1,b=2 p2v.dump_config_and_exit')
    assert r.returncode == 0, r.stderr
    assert "p2v.remote.server=conv\n" in r.stdout and f"p2v.disks={img}\n" in r.stdout
    assert "p2v.output.misc=a=1,b=2\n" in r.stdout and "two words" not in r.stdout


def test_post_defaults_to_poweroff_only_in_kernel_mode_as_root() -> None:
    proc = Cmdline.from_string("p2v.server=conv", source="proc")
    given = Cmdline.from_string("p2v.server=conv", source="string")

    def post(cmdline: Cmdline, euid: int, *flags: str) -> str | None:
        ns = cli.build_parser().parse_args(list(flags))
        return cli.assemble(ns, cmdline, None, euid=euid).post

    assert post(proc, 0) == "poweroff"
    assert post(proc, 1000) is None
    assert post(given, 0) is None
    assert post(Cmdline([], "proc"), 0, "--server", "conv") is None  # server from a flag
    assert post(proc, 0, "--post", "echo done") == "echo done"
    assert post(Cmdline.from_string("p2v.server=conv p2v.post=true", "proc"), 0) == "true"
    # what will run is in the configuration (so --dump-config shows it)
    assert "p2v.post=poweroff\n" in config.dump(cli.assemble(
        cli.build_parser().parse_args([]), proc, None, euid=0))
