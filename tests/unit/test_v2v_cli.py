"""v2v command line: version/features formats, option errors, bad input (one-line errors)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from v2v_helpers import assert_one_line_error, check_golden, run_v2v


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
