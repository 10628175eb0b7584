"""The server's resumable pull (v2v/transfer.py) against a real nbdkit on a unix socket, no
appliance: the NBD server is killed mid-pull (once bytes have landed) and started again on the
same socket, as p2v does after re-opening its forward: the pull continues and the copy equals
the source on every pulled range; never started again: a one-line V2VError after the retries.
Under --bandwidth (ratelimit.py) the same pull is paced, still resumes, and its chunk sums
(what verification compares) are the source's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pyv2v import nbd
from pyv2v.errors import V2VError
from pyv2v.v2v import ratelimit, transfer

SIZE = 24 << 20
RANGES = [(0, 4 << 20), (6 << 20, 10 << 20), (20 << 20, 4 << 20)]


def serve(source: Path, sock: Path, rate: str = "16M") -> subprocess.Popen[bytes]:
    limit = ["--filter=rate"] if rate else []
    proc = subprocess.Popen(["nbdkit", "-r", "-f", "-U", str(sock), *limit, "file",
                             f"file={source}", *([f"rate={rate}"] if rate else [])],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def wait_for_bytes(dest: Path) -> None:
    deadline = time.monotonic() + 60
    while not (dest.exists() and dest.stat().st_blocks > 0):
        assert time.monotonic() < deadline, "no bytes pulled"
        time.sleep(0.05)


@pytest.mark.parametrize("restart", [True, False])
def test_pull_survives_a_dropped_nbd_server(tmp_path: Path, restart: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "RETRIES", 3)
    source = tmp_path / "disk"
    source.write_bytes(os.urandom(SIZE))
    sock, dest = tmp_path / "sda.sock", tmp_path / "copy.raw"
    proc = serve(source, sock)
    lines: list[str] = []
    result: list[object] = []

    def run() -> None:
        try:
            result.append(transfer.pull(nbd.nbd_unix_uri(str(sock)), str(dest), SIZE, RANGES,
                                        lines.append))
        except V2VError as e:
            result.append(e)

    t = threading.Thread(target=run)
    t.start()
    try:
        wait_for_bytes(dest)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sock.unlink(missing_ok=True)
        if restart:
            time.sleep(1.5)  # the first reconnection attempt fails: nothing listens
            proc = serve(source, sock)
        t.join(120)
    finally:
        proc.kill()
        proc.wait()
    assert not t.is_alive()
    if not restart:
        assert isinstance(result[0], V2VError), result
        assert "gave up after 3 reconnection attempts" in str(result[0])
        assert "\n" not in str(result[0])
        return
    pulled = result[0]
    assert isinstance(pulled, transfer.Pulled), result
    assert any("Data connection dropped at " in ln for ln in lines), lines
    assert pulled.reconnects >= 1 and pulled.moved == sum(n for _, n in RANGES)
    src, copy = source.read_bytes(), dest.read_bytes()
    for off, n in RANGES:
        assert copy[off:off + n] == src[off:off + n]
    assert copy[4 << 20:6 << 20] == bytes(2 << 20)  # not pulled: a hole
    assert pulled.sums == [hashlib.sha256(src[o:o + n]).hexdigest()
                           for o, n in transfer.chunks(RANGES)]


def test_capped_pull_is_paced_resumes_and_keeps_its_sums(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """16 Mibit/s = 2 MiB/s: 6 MiB take at least ~2.7 s where the same pull uncapped takes
    well under a second; the server killed and restarted mid-pull: resumed at the cap."""
    size = 6 << 20
    source = tmp_path / "disk"
    source.write_bytes(os.urandom(size))
    sock = tmp_path / "sdb.sock"
    proc = serve(source, sock, rate="")
    uri = nbd.nbd_unix_uri(str(sock))
    try:
        t = time.monotonic()
        free = transfer.pull(uri, str(tmp_path / "free.raw"), size, [(0, size)], print)
        uncapped = time.monotonic() - t
        dest, lines = tmp_path / "capped.raw", []
        t = time.monotonic()
        capped = transfer.pull(uri, str(dest), size, [(0, size)], lines.append,
                               ratelimit.RateLimit(16 << 20))
        took = time.monotonic() - t
        assert uncapped < 1.0 and took > 2.5, (uncapped, took)
        assert "limited to 16.8 Mbit/s" in lines[0], lines
        data = source.read_bytes()
        for pulled in (free, capped):
            assert pulled.sums == [hashlib.sha256(data[o:o + n]).hexdigest()
                                   for o, n in pulled.chunks]
        assert len(capped.chunks) == size // transfer.CAPPED_CHUNK

        monkeypatch.setattr(transfer, "RETRIES", 3)
        dest, lines = tmp_path / "resumed.raw", []
        result: list[object] = []
        th = threading.Thread(target=lambda: result.append(transfer.pull(
            uri, str(dest), size, [(0, size)], lines.append, ratelimit.RateLimit(16 << 20))))
        th.start()
        wait_for_bytes(dest)
        proc.kill()
        proc.wait()
        sock.unlink(missing_ok=True)
        proc = serve(source, sock, rate="")
        th.join(60)
        assert not th.is_alive() and isinstance(result[0], transfer.Pulled), result
        assert result[0].reconnects >= 1 and result[0].sums == capped.sums, lines
        assert dest.read_bytes() == source.read_bytes()
    finally:
        proc.kill()
        proc.wait()
