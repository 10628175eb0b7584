"""p2v transport verification against our real v2v over the loopback sshd (issue 16): one byte
corrupted in transit fails the conversion at verification, before any conversion work.

The "physical" disk is 32 MiB of random data (no partitions: every byte is needed), pulled
under p2v --bandwidth 200M (a cap must not skip verification: 128 paced 256 KiB chunks).  The
corruption is a harness hook, not a product flag: an `nbdkit` shim first on p2v's PATH serves
a copy of the disk with one byte flipped, while p2v's verification reads the disk itself.
(Resume after a dropped data ssh: tests/e2e/test_p2v_used_disk.py; past the retry limit:
test_p2v_faults_real.py.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from p2v_real import (
    P2V,
    conversion_server,
    listing,
    only_error_line,
    remote_procs,
    wait_until,
)
from proc_helpers import exited_unreaped, tagged

from pyv2v_harness import demo, loopback

pytestmark = [pytest.mark.slow]

SIZE = 32 << 20
CORRUPT_AT = (20 << 20) + 12345
V2V_PROG = "(virt-)?v2v"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Rig:
    source: Path
    before: str
    srv: loopback.Server
    pull: Path
    out: Path
    tmp: Path


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    source = tmp_path / "source.img"
    source.write_bytes(os.urandom(SIZE))
    srv, pull = conversion_server(tmp_path)
    try:
        out = tmp_path / "out"
        out.mkdir()
        yield Rig(source, sha256(source), srv, pull, out, tmp_path)
    finally:
        srv.stop()


def server_log(rdir: Path) -> str:
    return (rdir / "virt-v2v-conversion-log.txt").read_text(errors="replace")


def assert_clean_end(rig: Rig, run: P2V) -> tuple[str, str]:
    """p2v exited with one error line, no process left on either side, no output, no pulled
    copy, source unchanged; returns (p2v's error line, the server's error line)."""
    assert exited_unreaped(run.proc.pid, 180), run.out
    assert tagged(run.tag) == []
    assert run.finish() == 1, run.out
    rdir = run.remote_dir()
    wait_until(lambda: not remote_procs(rig.srv), 60, "the server's conversion to end")
    assert listing(rig.out) == []
    assert [str(p) for p in rig.pull.rglob("*")] == []
    assert sha256(rig.source) == rig.before
    return only_error_line(run.out, "p2v"), only_error_line(server_log(rdir), V2V_PROG)


NBDKIT_SHIM = """#!/bin/sh
# harness hook: serve a copy of the disk with one byte flipped ("corrupted in transit")
dir=$(dirname "$0")
for a in "$@"; do
  case "$a" in
    file=*) src=${a#file=}
            /usr/bin/python3 -c 'import sys; f = open(sys.argv[2], "wb"); \
data = bytearray(open(sys.argv[1], "rb").read()); data[int(sys.argv[3])] ^= 0xFF; \
f.write(data)' "$src" "$dir/corrupt.img" "$CORRUPT_AT"
            set -- "$@" "file=$dir/corrupt.img";;
    *) set -- "$@" "$a";;
  esac
  shift
done
exec /usr/bin/nbdkit "$@"
"""


def test_byte_corrupted_in_transit_fails_verification(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    shim = rig.tmp / "shim"
    shim.mkdir()
    (shim / "nbdkit").write_text(NBDKIT_SHIM)
    (shim / "nbdkit").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    monkeypatch.setenv("CORRUPT_AT", str(CORRUPT_AT))
    # under p2v --bandwidth (virt-v2v --bandwidth): the capped pull is verified as well
    argv = demo.p2v_argv
    monkeypatch.setattr(demo, "p2v_argv", lambda *a: argv(*a) + ["--bandwidth", "200M"])
    run = P2V.start(rig.srv, rig.source, rig.out, "corrupt")
    p2v_line, server_line = assert_clean_end(rig, run)
    assert (shim / "corrupt.img").exists()  # the hook was used
    assert server_line.endswith("verification of sda failed: 1 of 128 ranges differ from the "
                                f"source, first at offset {20 << 20}"), server_line
    progress = run.remote_dir() / "sda.sock.sums.progress"  # reported over the real sshd
    assert progress.read_text().split()[1] == "128" and progress.stat().st_mode & 0o777 == 0o600
    log = server_log(run.remote_dir())
    assert "limited to 209.7 Mbit/s" in log and "Inspecting the source" not in log, log
    assert "virt-v2v failed with exit code 1" in p2v_line, p2v_line
    shutil.rmtree(shim)
