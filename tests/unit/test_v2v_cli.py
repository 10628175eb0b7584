"""v2v command line: version/features formats, option errors, bad input (one-line errors),
-ic/-oc refusal, --bandwidth units, -x tracing, and the exit status of every path through main()."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from v2v_helpers import assert_one_line_error, check_golden, run_v2v

from pyv2v import errors, log, process
from pyv2v.v2v import cli, inputs, outputs, pipeline


def test_version_is_accepted_by_virt_p2v() -> None:
    res = run_v2v("--version")
    assert res.returncode == 0
    m = re.match(r"^virt-v2v ([1-9][^\s]*)", res.stdout)
    assert m and int(m.group(1).split(".")[0]) in (1, 2)
    assert "pyv2v" in res.stdout


def test_machine_readable_tokens_golden() -> None:
    res = run_v2v("--machine-readable")
    assert res.returncode == 0
    tokens = res.stdout.split()
    assert "libguestfs-rewrite" in tokens and "input:libvirtxml" in tokens
    assert "output:rhv-upload" not in tokens  # only what we really support
    check_golden("v2v/machine-readable.txt", res.stdout)


def test_mac_ip_option_token_matches_the_parser() -> None:
    """virt-v2v advertises `mac-ip-option` for --mac MAC:ip:ADDR,GW,LEN,DNS…; so do we, and the
    form it names is really accepted (and a malformed one refused with a --mac error)."""
    assert "mac-ip-option" in run_v2v("--machine-readable").stdout.split()
    ns = cli.parse(["-i", "disk", "x.img", "-o", "null",
                        "--mac", "52:54:00:12:34:56:ip:192.0.2.5,192.0.2.1,24,192.0.2.53"])
    plan = cli.make_plan(ns)
    static = plan.network.static["52:54:00:12:34:56"]
    assert "192.0.2.5" in str(static) and "192.0.2.53" in str(static)


def test_help_has_examples() -> None:
    res = run_v2v("--help")
    assert res.returncode == 0
    assert "examples:" in res.stdout and "-i disk" in res.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-i", "bogus", "x", "-o", "null"], "unknown input mode -i bogus"),
        (["-i", "disk", "/nonexistent.img", "-o", "null"], "disk image not found"),
        (["-i", "disk", "x.img", "-o", "bogus"], "unknown output mode -o bogus"),
        (["-i", "disk", "x.img", "-o", "local"], "needs -os"),
        (["-i", "disk", "x.img", "-o", "local", "-os", "/nonexistent-dir"], "does not exist"),
        (["--in-place", "-i", "disk", "x.img"], "--in-place is not supported"),
        (["--frobnicate"], "unrecognized arguments"),
        (["-i", "disk", "x.img", "-o", "local", "-os", "/tmp", "-oo", "nope"], "unknown -oo"),
        (["-i", "disk", "x.img", "--mac", "zz:network:x", "-o", "null"], "--mac"),
    ],
)
def test_bad_input_one_line_errors(args: list[str], needle: str) -> None:
    assert_one_line_error(run_v2v(*args, timeout=60), needle)


def test_unreadable_and_directory_disk(tmp_path: Path) -> None:
    assert_one_line_error(run_v2v("-i", "disk", str(tmp_path), "-o", "null", timeout=60),
                          "is a directory")
    junk = tmp_path / "junk.qcow2"
    junk.write_bytes(b"QFI\xfb" + b"\0" * 100)  # a broken qcow2 header
    assert_one_line_error(run_v2v("-i", "disk", str(junk), "-if", "qcow2", "-o", "null",
                                  timeout=60), "cannot read disk image")


def test_output_dir_not_writable(tmp_path: Path) -> None:
    img = tmp_path / "d.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(img), "10M"], check=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    # root ignores directory modes; a read-only bind is out of reach, so use a file instead
    afile = tmp_path / "afile"
    afile.write_text("")
    assert_one_line_error(run_v2v("-i", "disk", str(img), "-o", "local", "-os", str(afile),
                                  timeout=60), "does not exist")


# --- Honest CLI (issue 9): -ic/-oc, --bandwidth, -x, exit statuses -------------------------



@pytest.mark.parametrize("args,needle", [
    (["-i", "disk", "x.img", "-ic", "qemu:///system", "-o", "null"], "-ic qemu:///system"),
    (["-i", "disk", "x.img", "-o", "null", "-oc", "qemu:///system"], "-oc qemu:///system"),
])
def test_conn_uris_refused_not_ignored(args: list[str], needle: str) -> None:
    res = run_v2v(*args, timeout=60)
    line = assert_one_line_error(res, needle, "does not use a connection URI")
    assert res.returncode == errors.EXIT_USAGE, line


def test_conn_uri_accepted_once_a_mode_declares_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ns = cli.build_parser().parse_args(["-i", "disk", "x.img", "-o", "null", "-oc", "URI"])
    with pytest.raises(errors.UsageError, match="only libvirt does"):
        cli.make_plan(ns)
    monkeypatch.setattr(outputs.OUTPUTS["null"], "accepts_conn", True)
    assert cli.make_plan(ns).output_opts.conn == "URI"
    monkeypatch.setattr(inputs.INPUTS["libvirtxml"], "accepts_conn", True)
    with pytest.raises(errors.UsageError, match=r"-i disk .*only libvirt, libvirtxml do"):
        cli.check_conn("-ic", "URI2", "disk", inputs.INPUTS)


@pytest.mark.parametrize("text,bps", [("100", 100), ("10k", 10240), ("10M", 10 * 1024**2),
                                      ("2G", 2 * 1024**3)])
def test_bandwidth_is_bits_per_second(text: str, bps: int) -> None:
    assert cli.parse_bandwidth(text) == bps


@pytest.mark.parametrize("text", ["0", "fast", "10MB", "-5", ""])
def test_bad_bandwidth_is_a_usage_error(text: str) -> None:
    with pytest.raises(errors.UsageError, match="bits per second"):
        cli.parse_bandwidth(text)


def test_bandwidth_goes_to_network_inputs_else_to_the_copy(tmp_path: Path) -> None:
    plan = cli.make_plan(cli.build_parser().parse_args(
        ["-i", "libvirtxml", "p.xml", "-o", "null", "--bandwidth", "8M",
         "--bandwidth-file", "rate"]))
    assert plan.input_opts.bandwidth == 8 * 1024**2 and plan.bandwidth is None
    assert plan.input_opts.bandwidth_file == os.path.abspath("rate")
    plan = cli.make_plan(cli.build_parser().parse_args(
        ["-i", "disk", "d.img", "-o", "null", "--bandwidth", "8M"]))
    assert plan.input_opts.bandwidth is None and plan.bandwidth == 1024**2  # bytes/s
    with pytest.raises(errors.UsageError, match="--bandwidth-file"):
        cli.make_plan(cli.build_parser().parse_args(
            ["-i", "disk", "d.img", "-o", "null", "--bandwidth-file", "rate"]))


def test_help_documents_exit_statuses_and_bandwidth_units() -> None:
    out = run_v2v("--help").stdout
    assert errors.EXIT_STATUS_HELP in out
    assert "bits per second" in out and "--allow-external-files" in out
    p2v = subprocess.run([str(Path(sys.executable).with_name("p2v")), "--help"],
                         capture_output=True, text=True, check=False)
    assert p2v.returncode == 0 and errors.EXIT_STATUS_HELP in p2v.stdout


@pytest.fixture
def no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() must not install its cancel handlers into the pytest process."""
    monkeypatch.setattr(process, "install_cancel_handlers", lambda: None)
    monkeypatch.setattr(process, "cancelled", lambda: None)


def _main_raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException,
                  capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    def boom(plan: pipeline.Plan, monitor: object) -> None:
        raise exc

    monkeypatch.setattr(pipeline, "run", boom)
    rc = cli.main(["-i", "disk", "x.img", "-o", "null"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("exc,code,needle", [
    (errors.V2VError("no operating system found"), 1, "error: no operating system found"),
    (RuntimeError("boom"), 70, "internal error: RuntimeError: boom"),
    (KeyboardInterrupt(), 130, "cancelled by SIGINT"),
    (errors.Cancelled("x", signal.SIGTERM), 143, "cancelled by SIGTERM"),
    (errors.Cancelled("x", signal.SIGHUP), 129, "cancelled by SIGHUP"),
])
def test_v2v_exit_paths(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                        no_signal_handlers: None, exc: BaseException, code: int,
                        needle: str) -> None:
    rc, err = _main_raising(monkeypatch, exc, capsys)
    assert rc == code, err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_v2v_exit_paths_usage_and_bad_input(capsys: pytest.CaptureFixture[str],
                                            no_signal_handlers: None) -> None:
    assert cli.main(["--frobnicate"]) == errors.EXIT_USAGE
    assert cli.main(["--in-place", "-i", "disk", "x"]) == errors.EXIT_USAGE
    assert cli.main(["-i", "disk", "/nonexistent.img", "-o", "null"]) == errors.EXIT_ERROR
    assert cli.main(["--version"]) == errors.EXIT_OK
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err and "disk image not found" in err


def test_x_enables_libguestfs_trace(monkeypatch: pytest.MonkeyPatch,
                                    no_signal_handlers: None) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(pipeline, "run", lambda plan, mon: seen.append(log.trace()))
    try:
        assert cli.main(["-i", "disk", "x.img", "-o", "null"]) == 0
        assert cli.main(["-x", "-i", "disk", "x.img", "-o", "null"]) == 0
    finally:
        log.configure(trace=False, verbose=False)
    assert seen == [False, True]


class FakeGuestFS:
    def __init__(self, **kw: object) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., object]:
        def call(*args: object, **kw: object) -> object:
            self.calls.append((name, args))
            return 4242 if name == "get_pid" else None
        return call


@pytest.mark.parametrize("trace", [False, True])
def test_appliance_handle_gets_the_trace_flag(monkeypatch: pytest.MonkeyPatch,
                                              trace: bool) -> None:
    import types

    from pyv2v import accel
    from pyv2v.v2v import appliance

    monkeypatch.setitem(sys.modules, "guestfs", types.SimpleNamespace(GuestFS=FakeGuestFS))
    monkeypatch.setattr(accel, "apply_to_environ", lambda: None)
    log.configure(trace=trace)
    try:
        app = appliance.Appliance([])
    finally:
        log.configure(trace=False)
    calls = app.g.calls
    process.cancel_cleanup(app._hook)
    assert (("set_trace", (True,)) in calls) == trace
    assert [c for c, _ in calls].index("launch") > 0  # flags are set before the launch
