"""p2v refuses bad settings before it connects anywhere (issue 10, "smaller ones").

- The guest name follows the server's rule (pyv2v.names, shared by p2v and v2v): a bad name
  from --name, p2v.name or the TUI fails with one line, before ssh-keyscan/ssh/scp ever run
  (seen with a fake `ssh` on PATH that would leave a mark, and with process.py argv capture).
- Ranges live in the field table (Spec.minimum/maximum): port, memory, vCPUs, RTC offset.
- Disks are stat()ed first: a FIFO fails at once (it used to block the NBD server's open), as do
  0-byte images, directories and character devices.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from p2v_fixtures import p2v_children

from pyv2v import names, process
from pyv2v.errors import V2VError
from pyv2v.p2v import cli, config, hardware
from pyv2v.p2v.conversion import Conversion
from pyv2v.p2v.kernel_cmdline import Cmdline
from pyv2v.p2v.tui.fields import parse_text
from pyv2v.v2v.pipeline import check_guest_name

UNREACHABLE = "192.0.2.1"  # TEST-NET-1: nothing answers there
SPECS = dict(config.specs())
BAD_NAMES = ["a/b", ".hidden", "..", "", "my guest", "x;reboot", "a\\b", "$(id)", "é/"]
GOOD_NAMES = ["web1", "p2v-abc_1.2+3", "-dash-first", "Ünïcode"]


# ---- the one name rule ----------------------------------------------------------------------

@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_by_both_sides(name: str) -> None:
    problem = names.guest_name_problem(name)
    assert problem
    with pytest.raises(V2VError, match="invalid guest name .*rename it with -on"):
        check_guest_name(name)
    if name:
        with pytest.raises(V2VError, match=r"invalid p2v\.guestname=.*--name"):
            config.parse_value(SPECS["guestname"], name)
        with pytest.raises(V2VError):  # the TUI's "Start" reads the same rule
            parse_text("guestname", name)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_pass_both_sides(name: str) -> None:
    assert names.guest_name_problem(name) is None
    check_guest_name(name)
    assert config.parse_value(SPECS["guestname"], name) == name
    assert parse_text("guestname", name) == name


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=12))
def test_p2v_and_server_agree_on_every_name(name: str) -> None:
    try:
        check_guest_name(name)
        server_ok = True
    except V2VError:
        server_ok = False
    p2v_ok = True
    try:
        cfg = config.Config(guestname=name)
        config.check_field(SPECS["guestname"], cfg.guestname)
        if not name:
            p2v_ok = False
    except V2VError:
        p2v_ok = False
    assert p2v_ok == server_ok == names.valid_guest_name(name)


def test_hardware_hostname_that_is_no_valid_name_is_not_the_default() -> None:
    cfg = config.Config()
    config.apply_hardware(cfg, hardware.Hardware(hostname="bad_host!"))
    assert cfg.guestname is None


# ---- no connection with a bad name ----------------------------------------------------------

@pytest.fixture
def fake_ssh(tmp_path: Path) -> tuple[Path, Path]:
    """A bin dir whose ssh/ssh-keyscan/scp only leave a mark (and fail)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    marks = tmp_path / "ssh-ran"
    for prog in ("ssh", "ssh-keyscan", "scp"):
        script = bindir / prog
        script.write_text(f"#!/bin/sh\necho {prog} \"$@\" >> {marks}\nexit 255\n")
        script.chmod(0o755)
    return bindir, marks


def image(tmp_path: Path, size: int = 1 << 20) -> Path:
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(size)
    return img


@pytest.mark.parametrize("how", ["--name", "cmdline"])
def test_bad_name_fails_before_any_ssh_process(tmp_path: Path, fake_ssh: tuple[Path, Path],
                                               how: str) -> None:
    bindir, marks = fake_ssh
    hook = tmp_path / "pre-ran"
    args = ["--disk", str(image(tmp_path)), "--known-hosts", str(tmp_path / "kh"),
            "--pre", f"touch {hook}"]
    if how == "--name":
        args += ["--cmdline", f"p2v.server={UNREACHABLE}", "--name", "bad/name"]
    else:
        args += ["--cmdline", f"p2v.server={UNREACHABLE} p2v.name=.hidden"]
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pyv2v.p2v.cli", *args], capture_output=True,
                       text=True, timeout=120, env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "invalid p2v.guestname=" in lines[0] and "(set --name" in lines[0], lines
    assert "Traceback" not in r.stderr
    assert not marks.exists(), marks.read_text()  # no ssh, ssh-keyscan or scp ever ran
    assert not hook.exists()  # nor p2v.pre
    assert time.monotonic() - started < 60  # no connect timeout was waited for


def test_bad_name_no_child_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The same in-process: process.py saw no ssh argv (spawn nor run)."""
    seen: list[list[str]] = []
    real_spawn, real_run = process.spawn, process.run

    def spawn(argv: list[str], *a: object, **kw: object) -> process.Child:
        seen.append(list(argv))
        return real_spawn(argv, *a, **kw)  # type: ignore[arg-type]

    def run(argv: list[str], *a: object, **kw: object) -> process.Result:
        seen.append(list(argv))
        return real_run(argv, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(process, "spawn", spawn)
    monkeypatch.setattr(process, "run", run)
    rc = cli.main(["--cmdline", f"p2v.server={UNREACHABLE}", "--name", "a b",
                   "--disk", str(image(tmp_path)), "--known-hosts", str(tmp_path / "kh")])
    assert rc == 1 and "invalid p2v.guestname='a b'" in capsys.readouterr().err
    assert not [a for a in seen if any("ssh" in w or w == "scp" for w in a)], seen
    assert p2v_children() == []  # (a session's test sshd, on this worker, may be alive)


def test_a_conversion_checks_before_its_session(tmp_path: Path) -> None:
    """The engine path (TUI "Start", fleet): Conversion.run refuses before any ssh."""
    cfg = config.Config(server=UNREACHABLE, guestname="x/y", cores=1, memory=1 << 30,
                        disks=[str(image(tmp_path))], known_hosts=str(tmp_path / "kh"))
    conv = Conversion(cfg)
    result = conv.run()
    assert not result.ok and "invalid p2v.guestname='x/y'" in result.message
    assert conv._session is None and p2v_children() == []


# ---- ranges from the field table ------------------------------------------------------------

@pytest.mark.parametrize("key,value,ok", [
    ("p2v.remote.port", "0", False), ("p2v.remote.port", "1", True),
    ("p2v.remote.port", "65535", True),
    ("p2v.remote.port", "65536", False), ("p2v.remote.port", "-22", False),
    ("p2v.memory", "0", False), ("p2v.memory", "512", False), ("p2v.memory", "255M", False),
    ("p2v.memory", "256M", True), ("p2v.memory", "64T", True), ("p2v.memory", "65T", False),
    ("p2v.memory", "9P", False),
    ("p2v.vcpu.cores", "0", False), ("p2v.vcpu.cores", "1", True),
    ("p2v.vcpu.cores", "4096", True), ("p2v.vcpu.cores", "4097", False),
    ("p2v.vcpu.cores", "-1", False), ("p2v.rtc.offset", "3600", True),
    ("p2v.rtc.offset", "999999", False),
])
def test_ranges(key: str, value: str, ok: bool) -> None:
    cfg = config.Config()
    line = Cmdline.from_string(f"{key}={value}")
    if ok:
        config.apply_cmdline(cfg, line)
    else:
        with pytest.raises(V2VError, match=f"invalid {key}=.*must be between") as e:
            config.apply_cmdline(cfg, line)
        assert "\n" not in str(e.value)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(1 << 70), max_value=1 << 70))
def test_port_and_cores_ranges_hold_for_any_number(n: int) -> None:
    for attr, lo, hi in (("port", 1, 65535), ("cores", 1, config.MAX_VCPUS)):
        spec = SPECS[attr]
        inside = lo <= n <= hi
        assert (config.field_problem(spec, n) is None) == inside
        if inside:
            assert config.parse_value(spec, str(n)) == n
        else:
            with pytest.raises(V2VError):
                config.parse_value(spec, str(n))


def test_flags_are_range_checked_too() -> None:
    ns = cli.build_parser().parse_args(["--port", "70000"])
    with pytest.raises(V2VError, match="p2v.remote.port=70000.*between 1 and 65535"):
        cli.assemble(ns, Cmdline(), None)


def test_validate_catches_values_set_in_code() -> None:
    cfg = config.Config(guestname="ok", cores=1, memory=1 << 30)
    config.validate(cfg)
    for attr, bad in (("port", 0), ("cores", 0), ("memory", 1 << 20), ("guestname", None)):
        wrong = config.Config(guestname="ok", cores=1, memory=1 << 30)
        setattr(wrong, attr, bad)
        with pytest.raises(V2VError, match="invalid"):
            config.validate(wrong)


def test_hardware_defaults_stay_in_range() -> None:
    cfg = config.Config()
    config.apply_hardware(cfg, hardware.Hardware(hostname="h", online_cpus=10_000,
                                                 memory=100 << 20))
    assert cfg.cores == config.MAX_VCPUS and cfg.memory == config.MIN_MEMORY
    config.validate(cfg)


# ---- disks: stat first, never block ---------------------------------------------------------

def _in_time(fn: object, seconds: float = 5.0) -> BaseException | None:
    """Run fn() in a thread; fail the test if it blocks (a FIFO open would)."""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()  # type: ignore[operator]
            box.append(None)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert box, f"blocked for more than {seconds} s"
    return box[0]


def test_fifo_disk_fails_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "disk.fifo"
    os.mkfifo(fifo)
    err = _in_time(lambda: hardware.check_disk(str(fifo)))
    assert isinstance(err, V2VError) and "is a FIFO, not a block device" in str(err)
    ns = cli.build_parser().parse_args(["--disk", str(fifo)])
    err = _in_time(lambda: cli.assemble(ns, Cmdline(), None))
    assert isinstance(err, V2VError) and "FIFO" in str(err)
    cfg = config.Config(guestname="g", cores=1, memory=1 << 30)
    config.apply_cmdline(cfg, Cmdline.from_string(f"p2v.disks={fifo}"))
    err = _in_time(lambda: config.validate(cfg))
    assert isinstance(err, V2VError) and "FIFO" in str(err)


def test_fifo_disk_through_the_command_line_fails_fast(tmp_path: Path,
                                                       fake_ssh: tuple[Path, Path]) -> None:
    bindir, marks = fake_ssh
    fifo = tmp_path / "disk.fifo"
    os.mkfifo(fifo)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pyv2v.p2v.cli", "--cmdline",
                        f"p2v.server={UNREACHABLE} p2v.disks={fifo}", "--name", "g",
                        "--known-hosts", str(tmp_path / "kh")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "is a FIFO" in r.stderr and len(r.stderr.splitlines()) == 1
    assert time.monotonic() - started < 30 and not marks.exists()


@pytest.mark.parametrize("kind", ["empty", "directory", "chardev", "missing"])
def test_other_unusable_disks(tmp_path: Path, kind: str) -> None:
    path = {"empty": str(image(tmp_path, 0)), "directory": str(tmp_path),
            "chardev": "/dev/null", "missing": str(tmp_path / "nope")}[kind]
    want = {"empty": r"is empty \(0 bytes\)", "directory": "is a directory",
            "chardev": "is a character device", "missing": "no such file"}[kind]
    with pytest.raises(V2VError, match=want):
        hardware.check_disk(path)


def test_disk_names_resolve_under_dev() -> None:
    with pytest.raises(V2VError, match=r"disk nosuchdisk0 \(/dev/nosuchdisk0\)"):
        hardware.check_disk("nosuchdisk0")
    assert hardware.check_disk(str(Path(__file__))) == Path(__file__).stat().st_size
