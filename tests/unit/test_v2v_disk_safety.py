"""-i disk with untrusted images (issue 10): backing files, qcow2 data files and VMDK extents
outside the image's directory, json:/protocol backings, FIFOs, devices and empty files are
refused with one line naming the file; a backing chain inside the directory is accepted.
Fixtures are tiny images made with the real qemu-img in tmp_path."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from v2v_helpers import assert_one_line_error, run_v2v

from pyv2v.errors import V2VError
from pyv2v.v2v.inputs.disk import probe_image

MiB = 1024**2


def qimg(*args: str) -> None:
    subprocess.run(["qemu-img", "create", "-q", *args], check=True, capture_output=True)


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """The input's directory; tmp_path itself (its parent) counts as outside."""
    (tmp_path / "in").mkdir()
    (tmp_path / "secret.raw").write_bytes(b"host secret\n" * 1000)
    return tmp_path / "in"


def refused(path: Path, *needles: str, allow: bool = False) -> str:
    with pytest.raises(V2VError) as e:
        probe_image(str(path), None, allow)
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_backing_in_etc_refused_through_the_cli(d: Path) -> None:
    top = d / "top.qcow2"
    qimg("-f", "qcow2", "-u", "-F", "raw", "-b", "/etc/passwd", str(top), "10M")
    res = run_v2v("-i", "disk", str(top), "-o", "null", timeout=60)
    assert_one_line_error(res, "refusing backing file /etc/passwd", "--allow-external-files")
    assert res.returncode == 1


def test_relative_backing_outside_and_symlink_escape_refused(d: Path) -> None:
    top = d / "top.qcow2"
    qimg("-f", "qcow2", "-u", "-F", "raw", "-b", "../secret.raw", str(top), "10M")
    refused(top, "backing file", "secret.raw", "outside")
    os.symlink(d.parent / "secret.raw", d / "link.raw")  # inside by name, outside for real
    top2 = d / "top2.qcow2"
    qimg("-f", "qcow2", "-u", "-F", "raw", "-b", "link.raw", str(top2), "10M")
    refused(top2, "link.raw", f"resolves to {d.parent / 'secret.raw'}")


@pytest.mark.parametrize("backing", [
    'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/passwd"}}',
    "nbd://localhost:10809/x", "http://192.0.2.1/disk.img", "nbd:localhost:10809",
])
def test_pseudo_backing_names_refused(d: Path, backing: str) -> None:
    top = d / "top.qcow2"
    qimg("-f", "qcow2", "-u", "-F", "raw", "-b", backing, str(top), "10M")
    refused(top, "backing file", "json: and protocol")


def test_deep_backing_outside_refused(d: Path) -> None:
    """The whole chain is walked: top → mid (inside) → /etc/passwd."""
    qimg("-f", "qcow2", "-u", "-F", "raw", "-b", "/etc/passwd", str(d / "mid.qcow2"), "10M")
    qimg("-f", "qcow2", "-F", "qcow2", "-b", "mid.qcow2", str(d / "top.qcow2"), "10M")
    refused(d / "top.qcow2", "/etc/passwd")


def test_qcow2_data_file_outside_refused(d: Path) -> None:
    top = d / "top.qcow2"
    qimg("-f", "qcow2", "-o", f"data_file={d.parent / 'data.raw'}", str(top), "10M")
    refused(top, "qcow2 data file", "data.raw")


def _vmdk(d: Path, extent: str) -> Path:
    """A monolithicFlat descriptor whose extent line names `extent`."""
    desc = d / "guest.vmdk"
    qimg("-f", "vmdk", "-o", "subformat=monolithicFlat", str(desc), "10M")
    text = desc.read_text().replace('"guest-flat.vmdk"', f'"{extent}"')
    desc.write_text(text)
    return desc


def test_vmdk_extent_outside_refused(d: Path) -> None:
    refused(_vmdk(d, "../secret.raw"), "VMDK extent", "secret.raw")
    refused(_vmdk(d, "/etc/passwd"), "VMDK extent", "/etc/passwd")


def test_vmdk_extent_fifo_refused_without_hanging(d: Path) -> None:
    os.mkfifo(d / "pipe")
    t = time.monotonic()
    refused(_vmdk(d, "pipe"), "FIFO")
    assert time.monotonic() - t < 5


def test_fifo_device_and_empty_disk_fail_fast(d: Path) -> None:
    os.mkfifo(d / "fifo.img")
    (d / "empty.img").write_bytes(b"")
    cases = [(d / "fifo.img", "is a FIFO"), (Path("/dev/null"), "is a character device"),
             (d / "empty.img", "is empty (0 bytes)")]
    for path, needle in cases:
        t = time.monotonic()
        res = run_v2v("-i", "disk", str(path), "-o", "null", timeout=30)
        assert_one_line_error(res, needle, str(path))
        assert res.returncode == 1 and time.monotonic() - t < 10


def test_zero_virtual_size_refused(d: Path) -> None:
    qimg("-f", "qcow2", str(d / "zero.qcow2"), "0")
    refused(d / "zero.qcow2", "virtual size of 0")


def test_backing_loop_refused(d: Path) -> None:
    qimg("-f", "qcow2", "-u", "-F", "qcow2", "-b", "b.qcow2", str(d / "a.qcow2"), "10M")
    qimg("-f", "qcow2", "-u", "-F", "qcow2", "-b", "a.qcow2", str(d / "b.qcow2"), "10M")
    refused(d / "a.qcow2", "loops")


def test_chain_inside_the_directory_accepted(d: Path) -> None:
    (d / "base").mkdir()
    qimg("-f", "raw", str(d / "base" / "base.raw"), "10M")
    qimg("-f", "qcow2", "-F", "raw", "-b", "base/base.raw", str(d / "mid.qcow2"), "10M")
    qimg("-f", "qcow2", "-F", "qcow2", "-b", str(d / "mid.qcow2"), str(d / "top.qcow2"))
    assert probe_image(str(d / "top.qcow2"), None) == ("qcow2", 10 * MiB)
    desc = d / "flat.vmdk"
    qimg("-f", "vmdk", "-o", "subformat=monolithicFlat", str(desc), "10M")
    assert probe_image(str(desc), None) == ("vmdk", 10 * MiB)
    qimg("-f", "vmdk", str(d / "sparse.vmdk"), "10M")  # its one extent is itself
    assert probe_image(str(d / "sparse.vmdk"), None) == ("vmdk", 10 * MiB)


def test_allow_external_files(d: Path) -> None:
    top = d / "top.qcow2"
    qimg("-f", "qcow2", "-u", "-F", "raw", "-b", str(d.parent / "secret.raw"), str(top), "1M")
    refused(top, "secret.raw")
    assert probe_image(str(top), None, allow_external=True) == ("qcow2", MiB)
    res = run_v2v("-i", "disk", str(top), "-o", "null", "--allow-external-files",
                  "--print-source", timeout=60)
    assert res.returncode == 0, res.stderr
