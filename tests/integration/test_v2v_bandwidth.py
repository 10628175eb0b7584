"""--bandwidth on the input side, for real: an NBD source (as p2v serves a disk) read through
the nbdkit rate filter that inputs/bandwidth.py puts in front of it, at BPS bits per second,
or at the rate written in --bandwidth-file.  Light: nbdkit and nbdcopy only, no appliance."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyv2v import nbd, process
from pyv2v.v2v.inputs.bandwidth import rate_argv, throttle
from pyv2v.v2v.inputs.base import InputOptions

MiB = 1024**2


@pytest.fixture
def source(tmp_path: Path) -> Iterator[nbd.NbdServer]:
    img = tmp_path / "src.raw"
    img.write_bytes(os.urandom(2 * MiB))  # random: nothing to skip as zero
    srv = nbd.start_nbdkit_readonly(str(img))
    yield srv
    process.cleanup_all()


def pull_seconds(uri: str, out: Path) -> float:
    t = time.monotonic()
    subprocess.run(["nbdcopy", uri, str(out)], check=True, timeout=60)
    return time.monotonic() - t


def test_rate_argv_is_bits_per_second() -> None:
    argv = rate_argv("nbd://localhost:1", 5000, 10 * MiB, "/run/rate")
    assert argv[:2] == ["nbdkit", "-r"] and "--filter=rate" in argv
    assert f"rate={10 * MiB}" in argv and "rate-file=/run/rate" in argv  # nbdkit: bits/s


def test_no_limit_is_the_source_itself(source: nbd.NbdServer) -> None:
    assert throttle(source.uri, InputOptions(args=())) == source.uri


@pytest.mark.exclusive  # times an unthrottled read: not while the other xdist worker loads the CPUs
def test_bandwidth_limits_the_network_read(source: nbd.NbdServer, tmp_path: Path) -> None:
    fast = pull_seconds(source.uri, tmp_path / "a.raw")
    # 4 Mibit/s = 512 KiB/s: after nbdkit's ~2 s burst bucket (1 MiB), 1 MiB takes ~2 s.
    slow_uri = throttle(source.uri, InputOptions(args=(), bandwidth=4 * MiB))
    assert slow_uri != source.uri
    slow = pull_seconds(slow_uri, tmp_path / "b.raw")
    assert fast < 1.0 and slow > 1.5, (fast, slow)
    assert (tmp_path / "b.raw").read_bytes() == Path(source.path).read_bytes()


def test_bandwidth_file_sets_the_rate(source: nbd.NbdServer, tmp_path: Path) -> None:
    rate = tmp_path / "rate"
    rate.write_text("4M\n")
    uri = throttle(source.uri, InputOptions(args=(), bandwidth_file=str(rate)))
    assert pull_seconds(uri, tmp_path / "c.raw") > 1.5
