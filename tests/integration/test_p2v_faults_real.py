"""Faults while our real v2v, as the conversion server, is pulling the p2v disk.

The "physical" disk is 32 MiB of random data read at 4 Mbit/s (a rate-limited nbdkit behind
nbdfuse, started by the test: p2v's own nbdkit serves the file as it would a /dev/sdX), so the
pull takes about a minute.  The fault is injected once bytes have arrived in v2v's local copy
of the source (its private PYV2V_TMPDIR), not after a guessed delay.  Then: one clear error line
on each side, no process left on either side (the p2v side checked before p2v is reaped, by an
environment tag; the server side by the sessions' PYV2V_LOOPBACK tag), nothing finished-looking
in the output directory, v2v's temporary copy removed, the source unchanged.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from p2v_real import (
    P2V,
    ThrottledDisk,
    conversion_server,
    listing,
    only_error_line,
    pulled_bytes,
    remote_procs,
    wait_until,
)
from proc_helpers import exited_unreaped, tagged

from pyv2v.v2v import transfer
from pyv2v_harness import loopback

pytestmark = [pytest.mark.slow]

SIZE = 32 << 20
V2V_PROG = "(virt-)?v2v"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Rig:
    source: Path
    before: str
    disk: ThrottledDisk
    srv: loopback.Server
    pull: Path
    out: Path


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    source = tmp_path / "source.img"
    source.write_bytes(os.urandom(SIZE))
    disk = ThrottledDisk(source, tmp_path / "mnt", "4M")
    try:
        srv, pull = conversion_server(tmp_path)
        try:
            out = tmp_path / "out"
            out.mkdir()
            yield Rig(source, sha256(source), disk, srv, pull, out)
        finally:
            srv.stop()
    finally:
        disk.close()


def start_and_wait_for_pull(rig: Rig, name: str) -> P2V:
    run = P2V.start(rig.srv, rig.disk.path, rig.out, name)
    wait_until(lambda: pulled_bytes(rig.pull) > 0 or run.proc.poll() is not None, 300,
               "the server to start pulling the disk")
    assert run.proc.poll() is None, run.out
    assert run.saw("Pulling source disk 1/1 from "), run.out
    assert 0 < pulled_bytes(rig.pull) < SIZE  # mid-pull
    assert [f for f in listing(rig.out) if f.endswith(".pyv2v-partial")]  # output set up
    return run


def assert_nothing_left(rig: Rig, rdir: Path, name: str) -> str:
    """Server processes gone, no output, no pulled copy, source unchanged; the server's error."""
    wait_until(lambda: not remote_procs(rig.srv), 60, "the server's conversion to end")
    log = (rdir / "virt-v2v-conversion-log.txt").read_text(errors="replace")
    left = [str(p.relative_to(rig.pull)) for p in rig.pull.rglob("*")]
    assert listing(rig.out) == [], listing(rig.out)  # no NAME.xml, NAME-sda, staging, lock
    assert left == [], f"v2v's copy of the source is left: {left}\n{log[-1500:]}"
    assert sha256(rig.source) == rig.before
    assert "Inspecting the source" not in log  # it never got past the pull
    return only_error_line(log, V2V_PROG)


def test_data_connection_killed_while_v2v_pulls_the_disk(rig: Rig,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed past p2v's retry limit (each data ssh it re-opens is killed as soon as it shows):
    a clean failure.  One kill is resumed: tests/e2e/test_p2v_used_disk.py."""
    monkeypatch.setenv("PYV2V_DATA_RETRIES", "2")
    run = start_and_wait_for_pull(rig, "dataconn")
    rdir = run.remote_dir()
    ssh = run.data_ssh_pids()
    assert len(ssh) == 1, tagged(run.tag)
    killed: set[int] = set()
    deadline = time.monotonic() + 300
    while not exited_unreaped(run.proc.pid, 0.05) and time.monotonic() < deadline:
        for pid in set(run.data_ssh_pids()) - killed:
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
    assert exited_unreaped(run.proc.pid, 120), run.out
    assert tagged(run.tag) == []  # p2v has exited, not yet reaped: survivors are orphans
    assert run.finish() == 1, run.out
    line = only_error_line(run.out, "p2v")
    assert "data connection for" in line and str(rig.disk.path) in line, line
    assert "reconnection failed 2 times" in line and "reconnecting (2/2)" in run.out, run.out
    server_error = assert_nothing_left(rig, rdir, "dataconn")
    print(f"\np2v: {line}\nserver: {server_error}")


def test_p2v_killed_while_v2v_pulls_the_disk(rig: Rig) -> None:
    run = start_and_wait_for_pull(rig, "p2vkilled")
    rdir = run.remote_dir()
    assert run.data_ssh_pids() and remote_procs(rig.srv)
    os.kill(run.proc.pid, signal.SIGKILL)
    assert exited_unreaped(run.proc.pid, 30)
    # p2v is dead and unreaped: its ssh and nbdkit must end by themselves (parent-death signal,
    # --exit-with-parent) rather than live on as orphans.  nbdkit first completes the reads it
    # has in flight (transfer.DEPTH × 1 MiB, 16 MiB: 32 s at this disk's 4 Mbit/s; a real disk
    # drains them in well under a second), so it is given that long on top.
    drain = transfer.DEPTH * transfer.CHUNK / (4e6 / 8)
    wait_until(lambda: not tagged(run.tag), 30 + 1.5 * drain,
               f"p2v's children to end: {tagged(run.tag)}")
    assert run.finish() == -signal.SIGKILL
    server_error = assert_nothing_left(rig, rdir, "p2vkilled")
    print(f"\nserver: {server_error}")
