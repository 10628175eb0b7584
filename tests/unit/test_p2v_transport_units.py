"""Transport pieces without an appliance: range arithmetic (usedmap), chunking and the
verification exchange (the server's transfer.verify against the p2v side's real Transport, its
"ssh" commands run by a local shell), p2v's checksums."""

from __future__ import annotations

import hashlib
import json
import shlex
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pyv2v import process, rates
from pyv2v.errors import V2VError
from pyv2v.p2v import transport as p2v_transport
from pyv2v.v2v import ratelimit, transfer, usedmap


def test_intersect_and_coalesce() -> None:
    assert usedmap.coalesce([(10, 5), (0, 10), (20, 0), (14, 3)]) == [(0, 17)]
    assert usedmap.intersect([(0, 100), (200, 50)], [(50, 175)]) == [(50, 50), (200, 25)]
    assert usedmap.intersect([(0, 10)], [(10, 10)]) == []


def test_keep_mask_drops_gaps_swap_bodies_and_keeps_head_and_gpt_tail() -> None:
    mib = 1 << 20
    parts = [(1 * mib, 10 * mib, False), (20 * mib, 8 * mib, True)]
    keep = usedmap.keep_mask(64 * mib, parts, gpt=True)
    assert keep == [(0, 11 * mib), (20 * mib, usedmap.SWAP_HEADER_KEEP), (63 * mib, mib)]
    assert usedmap.keep_mask(64 * mib, [], gpt=False) == [(0, 64 * mib)]


def test_zeroed_ranges_are_the_overlays_own_zero_clusters() -> None:
    """`qemu-img map` of the overlay alone: only clusters present in it and zero count (not
    the unallocated rest, which the backing source decides)."""
    text = json.dumps([
        {"start": 0, "length": 4096, "depth": 0, "present": False, "zero": True, "data": False},
        {"start": 4096, "length": 8192, "depth": 0, "present": True, "zero": True, "data": False},
        {"start": 12288, "length": 4096, "depth": 0, "present": True, "zero": False,
         "data": True, "offset": 0},
        {"start": 16384, "length": 4096, "depth": 0, "present": True, "zero": True,
         "data": False},
    ])
    assert usedmap.zeroed_ranges(text) == [(4096, 8192), (16384, 4096)]


def test_subtract() -> None:
    a = [(0, 100), (200, 50), (300, 10)]
    assert usedmap.subtract(a, []) == a
    assert usedmap.subtract(a, [(0, 400)]) == []
    assert usedmap.subtract(a, [(10, 20), (90, 120), (240, 65)]) == \
        [(0, 10), (30, 60), (210, 30), (305, 5)]
    assert usedmap.subtract([(0, 10)], [(10, 5)]) == [(0, 10)]


def test_chunks_split_ranges() -> None:
    assert transfer.chunks([(0, 10), (100, 3)], size=4) == [(0, 4), (4, 4), (8, 2), (100, 3)]


def test_socket_of() -> None:
    assert transfer.socket_of("nbd+unix:///?socket=/tmp/virt-p2v-x/sda.sock") == \
        "/tmp/virt-p2v-x/sda.sock"
    assert transfer.socket_of("nbd://localhost:1234") is None


def _pulled(data: bytes) -> transfer.Pulled:
    p = transfer.Pulled()
    for off in range(0, len(data), 4):
        piece = data[off:off + 4]
        p.chunks.append((off, len(piece)))
        p.sums.append(hashlib.sha256(piece).hexdigest())
        p.moved += len(piece)
    return p


class LocalSession:
    """p2v's Session.run executed here by sh; the first `lost` replies fail like a dropped
    ssh connection, so the sender's retries and its final failure can be seen."""

    def __init__(self, lost: int = 0, killed: bool = False, hang: bool = False) -> None:
        self.lost = lost
        self.killed = killed  # every reply's ssh dies of SIGTERM
        self.hang = hang  # every reply's ssh hangs (a dead link)
        self.sends = 0
        self.reports = 0  # progress reports (not subject to `lost`/`killed`)

    def run(self, command: list[str] | str, *, timeout: float = 120, what: str = "ssh",
            input: str | None = None) -> process.Result:
        cmd = command if isinstance(command, str) else shlex.join(command)
        if input is not None and ".sums.progress" in cmd:
            self.reports += 1
        elif input is not None:
            self.sends += 1
            if self.lost:
                self.lost -= 1
                raise V2VError(f"{what}: connection to the conversion server lost")
            if self.killed:
                cmd = "kill -TERM $$"
            if self.hang:
                cmd = "sleep 60"
        return process.run(["sh", "-c", cmd], check=False, input=input)


def _client(disk: Path, sock: Path, corrupt: bool = False, lost: int = 0, killed: bool = False,
            hang: bool = False) -> tuple[threading.Thread, p2v_transport.Transport]:
    """p2v's side: the real Transport answering the server's verify line for `disk`."""
    if corrupt:  # p2v reads its own disk: a copy with chunk 1 changed stands for corruption
        bad = bytearray(disk.read_bytes())
        bad[4] ^= 0xFF
        disk = disk.with_name("disk-as-p2v-reads-it")
        disk.write_bytes(bytes(bad))
    conn = SimpleNamespace(disk=str(disk), remote_socket=str(sock), alive=lambda: True)
    tr = p2v_transport.Transport(cast(Any, LocalSession(lost, killed, hang)), [cast(Any, conn)],
                                 "127.0.0.1", lambda e: None)

    def run() -> None:
        ranges = Path(str(sock) + ".ranges")
        while not ranges.exists():
            time.sleep(0.05)
        tr.on_line(transfer.VERIFY_LINE.format(disk="sda", n=1, path=ranges))
        tr.threads[0].join(60)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, tr


def _asked(tmp_path: Path) -> tuple[Path, Path]:
    """A 20-byte disk and the server's request for one range of it (SOCKET.ranges written)."""
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(range(20)))
    sock = tmp_path / "sda.sock"
    Path(str(sock) + ".ranges").write_text(json.dumps({"algorithm": "sha256",
                                                       "chunks": [[0, 4]]}))
    return disk, sock


@pytest.mark.parametrize("corrupt", [False, True])
def test_verify_exchange(tmp_path: Path, corrupt: bool) -> None:
    data = bytes(range(20))
    disk = tmp_path / "disk"
    disk.write_bytes(data)
    sock = tmp_path / "sda.sock"
    lines: list[str] = []
    t, _ = _client(disk, sock, corrupt)
    if corrupt:
        with pytest.raises(V2VError, match=r"verification of sda failed: 1 of 5 ranges differ "
                                           r"from the source, first at offset 4"):
            transfer.verify(str(sock), "sda", _pulled(data), lines.append, timeout=30)
    else:
        assert transfer.verify(str(sock), "sda", _pulled(data), lines.append, timeout=30) == 20
        assert "Verified 0.00 GiB of sda: identical to the source" in lines[-1]
    t.join(5)
    m = p2v_transport.VERIFY_RE.search(lines[0])  # the line the p2v side reacts to
    assert m and m["path"] == str(sock) + ".ranges" and m["disk"] == "sda" and m["n"] == "5"


def test_reply_survives_lost_connections_and_is_owner_only(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(range(20)))
    sock = tmp_path / "sda.sock"
    t, tr = _client(disk, sock, lost=2)
    assert transfer.verify(str(sock), "sda", _pulled(disk.read_bytes()), print, timeout=30) == 20
    t.join(5)
    assert tr.s.sends == 3 and tr.failure is None and tr.check() is None  # type: ignore[attr-defined]
    assert (Path(str(sock) + ".sums").stat().st_mode & 0o777) == 0o600


def test_undeliverable_reply_fails_the_conversion_at_once(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this the server waits VERIFY_TIMEOUT (30 min) for checksums that never come."""
    monkeypatch.setattr(p2v_transport, "SEND_RETRIES", (0.01, 0.01))
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(range(20)))
    sock = tmp_path / "sda.sock"
    t, tr = _client(disk, sock, lost=99)
    with pytest.raises(V2VError, match=r"no word from the client for 2 s \(it had "
                                       r"checksummed 5 of 5 ranges\)"):
        transfer.verify(str(sock), "sda", _pulled(disk.read_bytes()), print, timeout=2,
                        silence=2)
    t.join(5)
    assert tr.s.sends == 3  # type: ignore[attr-defined]
    assert tr.check() == (f"conversion failed: could not send the verification checksums of "
                          f"{disk} to the server: verification: connection to the conversion "
                          "server lost")


def test_close_stops_the_reply_retries_at_once(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The conversion ended (the server failed) while a reply was waiting to be tried again:
    close() stops it, nothing more is sent, and no thread (nor its ssh) outlives close().
    Seen in CI: a reply ssh started after p2v's cleanup was left running after p2v exited."""
    monkeypatch.setattr(p2v_transport, "SEND_RETRIES", (30.0, 30.0))
    disk, sock = _asked(tmp_path)
    t, tr = _client(disk, sock, lost=99)
    session = cast(LocalSession, tr.s)
    deadline = time.monotonic() + 30
    while session.sends < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session.sends == 1
    started = time.monotonic()
    tr.close(grace=10)
    assert not tr.threads[0].is_alive() and time.monotonic() - started < 5
    t.join(5)
    assert session.sends == 1 and tr.failure is None
    tr.on_line(transfer.VERIFY_LINE.format(disk="sda", n=1, path=str(sock) + ".ranges"))
    assert len(tr.threads) == 1  # a verify line after close starts nothing


@pytest.mark.parametrize("ours", [True, False])
def test_reply_ssh_killed_by_a_signal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      ours: bool) -> None:
    """Killed by p2v's own cancel or cleanup: not tried again (the new ssh would outlive the
    cleanup).  Killed by anything else (the OOM killer): tried again like a lost link, and the
    conversion fails once the attempts are spent, rather than leave the server waiting."""
    monkeypatch.setattr(p2v_transport, "SEND_RETRIES", (0.01, 0.01))
    monkeypatch.setattr(p2v_transport.process, "cancelled", lambda: "SIGTERM" if ours else None)
    disk, sock = _asked(tmp_path)
    t, tr = _client(disk, sock, killed=True)
    t.join(30)
    assert not t.is_alive()
    if ours:
        assert cast(LocalSession, tr.s).sends == 1 and tr.failure is None
    else:
        assert cast(LocalSession, tr.s).sends == 3 and tr.failure is not None
        assert "exit code -15" in tr.failure, tr.failure


def test_close_kills_a_reply_stuck_on_a_dead_link(tmp_path: Path) -> None:
    """A cancel on a dead link must not wait for the reply ssh's timeout: after close()'s
    grace its ssh (here a shell that would hang 60 s) is killed and the thread ends."""
    disk, sock = _asked(tmp_path)
    t, tr = _client(disk, sock, hang=True)
    session = cast(LocalSession, tr.s)
    deadline = time.monotonic() + 30
    while session.sends < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the hanging "ssh" has started
    started = time.monotonic()
    tr.close(grace=0.5)
    assert not tr.threads[0].is_alive() and time.monotonic() - started < 15
    assert session.sends == 1 and tr.failure is None
    t.join(5)


class SlowHash:
    """hashlib for the p2v side whose sha256 takes `delay` s a chunk (a slow, large disk),
    and `stall` s more from chunk `stall_at` on (a client that hangs)."""

    def __init__(self, delay: float, stall_at: int = -1, stall: float = 0.0) -> None:
        self.delay, self.stall_at, self.stall, self.calls = delay, stall_at, stall, 0

    def sha256(self, data: bytes) -> Any:
        self.calls += 1
        time.sleep(self.delay + (self.stall if self.calls == self.stall_at else 0.0))
        return hashlib.sha256(data)


def test_slow_checksumming_with_progress_outlasts_the_servers_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing a large disk takes as long as reading it: a fixed wait failed big conversions
    after the whole pull.  The client takes 6 s here against 3 s waits and still verifies,
    because its progress reports keep the server waiting."""
    monkeypatch.setattr(p2v_transport, "hashlib", SlowHash(0.2))
    monkeypatch.setattr(p2v_transport, "PROGRESS_EVERY", 0.2)
    data = bytes(range(120))  # 30 chunks
    disk = tmp_path / "disk"
    disk.write_bytes(data)
    sock = tmp_path / "sda.sock"
    lines: list[str] = []
    t, tr = _client(disk, sock)
    assert transfer.verify(str(sock), "sda", _pulled(data), lines.append, timeout=3,
                           silence=3) == 120
    t.join(5)
    assert cast(LocalSession, tr.s).reports >= 3
    news = [ln for ln in lines if "the client has checksummed" in ln]
    assert news and news[0].startswith("Verifying sda: the client has checksummed "), lines
    assert (Path(str(sock) + ".sums.progress").stat().st_mode & 0o777) == 0o600


def test_client_silent_after_progress_fails_saying_where_it_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(p2v_transport, "hashlib", SlowHash(0.05, stall_at=10, stall=8.0))
    monkeypatch.setattr(p2v_transport, "PROGRESS_EVERY", 0.1)
    data = bytes(range(120))
    disk = tmp_path / "disk"
    disk.write_bytes(data)
    sock = tmp_path / "sda.sock"
    t, tr = _client(disk, sock)
    with pytest.raises(V2VError, match=r"verification of sda: no word from the client for "
                                       r"2 s \(it had checksummed \d of 30 ranges\)"):
        transfer.verify(str(sock), "sda", _pulled(data), print, timeout=30, silence=2)
    tr.close(grace=10)
    t.join(5)


def test_a_slow_upload_of_the_sums_is_news_to_the_server(tmp_path: Path) -> None:
    """A large disk's sums are a large upload: while SOCKET.sums.part grows the server waits
    (1 s waits here; the upload takes 3 s)."""
    sock = tmp_path / "sda.sock"
    data = b"abcdefgh"
    body = json.dumps({"sums": _pulled(data).sums})

    def upload() -> None:
        part = Path(str(sock) + ".sums.part")
        while not Path(str(sock) + ".ranges").exists():
            time.sleep(0.05)
        for i in range(1, 11):
            part.write_text(body[: len(body) * i // 10])
            time.sleep(0.3)
        part.rename(str(sock) + ".sums")
    t = threading.Thread(target=upload, daemon=True)
    t.start()
    assert transfer.verify(str(sock), "sda", _pulled(data), print, timeout=1, silence=1) == 8
    t.join(5)


def test_a_repeated_report_is_news_to_the_server(tmp_path: Path) -> None:
    """Before each new attempt to send the sums the client reports "TOTAL TOTAL" again, the
    same text: each such report (a new file renamed over the last, as p2v writes it) keeps the
    server waiting (1 s waits here; the retries take 3 s)."""
    sock = tmp_path / "sda.sock"
    data = b"abcdefgh"
    lines: list[str] = []

    def retrying_client() -> None:
        while not Path(str(sock) + ".ranges").exists():
            time.sleep(0.05)
        for _ in range(10):
            part = Path(str(sock) + ".sums.progress.part")
            part.write_text("2 2\n")
            part.rename(str(sock) + ".sums.progress")
            time.sleep(0.3)
        Path(str(sock) + ".sums").write_text(json.dumps({"sums": _pulled(data).sums}))
    t = threading.Thread(target=retrying_client, daemon=True)
    t.start()
    assert transfer.verify(str(sock), "sda", _pulled(data), lines.append, timeout=1,
                           silence=1) == 8
    t.join(5)
    assert sum("the client has checksummed 2 of 2" in ln for ln in lines) == 1, lines


def test_first_wait_allows_for_reading_the_pulled_bytes(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """A client that reports no progress (older pyv2v media) gets VERIFY_TIMEOUT or the time
    to read what was pulled at VERIFY_MIN_RATE, whichever is longer."""
    waits: list[float] = []

    class Clock:
        now = 0.0

        @staticmethod
        def monotonic() -> float:
            return Clock.now

        @staticmethod
        def sleep(s: float) -> None:
            waits.append(s)
            Clock.now += 60.0

    monkeypatch.setattr(transfer, "time", Clock)
    pulled = _pulled(b"abcd")
    pulled.moved = 100 * transfer.VERIFY_MIN_RATE * 100  # 10000 s of reading
    with pytest.raises(V2VError, match="sent no checksums within 10000 s"):
        transfer.verify(str(tmp_path / "sda.sock"), "sda", pulled, print)
    Clock.now = 0.0
    pulled.moved = 1 << 30
    with pytest.raises(V2VError, match="sent no checksums within 1800 s"):
        transfer.verify(str(tmp_path / "sda.sock"), "sda", pulled, print)


def test_verify_times_out_without_client(tmp_path: Path) -> None:
    with pytest.raises(V2VError, match="sent no checksums within 1 s"):
        transfer.verify(str(tmp_path / "sda.sock"), "sda", _pulled(b"abcd"), print, timeout=1)


def test_client_verifies_only_with_the_features_file(tmp_path: Path) -> None:
    sock = str(tmp_path / "sda.sock")
    assert not transfer.client_verifies(sock)
    (tmp_path / transfer.FEATURES_FILE).write_text(p2v_transport.FEATURES)
    assert transfer.client_verifies(sock)


def test_parse_rate_is_bits_with_1024_suffixes() -> None:
    assert rates.parse_rate("10M\n") == 10 << 20
    assert rates.parse_rate(" 512k ") == 512 << 10 and rates.parse_rate("800") == 800
    assert rates.parse_rate("fast") is None and rates.parse_rate("") is None


def test_rate_limit_paces_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(ratelimit.time, "sleep", sleep)
    rate = ratelimit.RateLimit(8 << 20)  # 8 Mibit/s = 1 MiB/s
    for _ in range(8):
        rate.take(256 << 10)
    # 8 x 256 KiB = 2 MiB: the 8th read may start after 7 x 0.25 s (less the burst credit)
    assert clock[0] - 100.0 == pytest.approx(1.75, abs=0.01), slept
    assert ratelimit.RateLimit.of(None, None) is None


def test_rate_file_is_reread_and_falls_back(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "rate"
    rate = ratelimit.RateLimit(1 << 20, str(f))
    assert rate.rate() == 1 << 20  # no file yet: --bandwidth
    f.write_text("4M\n")
    monkeypatch.setattr(ratelimit, "RELOAD", 0.0)
    assert rate.rate() == 4 << 20
    f.write_text("0\n")
    assert rate.rate() == 1 << 20  # "0" is no rate: back to --bandwidth


def test_bandwidth_keeps_a_p2v_disk_on_its_socket(tmp_path: Path) -> None:
    """--bandwidth no longer puts an nbdkit proxy (a TCP URI) in front of a raw p2v disk: the
    pull paces it itself, so the disk keeps the client's socket and gets verified."""
    from pyv2v.v2v.inputs import InputOptions, get

    sock = tmp_path / "sda.sock"
    xml = tmp_path / "physical.xml"
    xml.write_text(f"""<domain type="physical"><name>h</name><memory>1048576</memory>
  <vcpu>1</vcpu><os><type arch="x86_64">hvm</type></os><devices>
    <disk type="network" device="disk"><driver name="qemu" type="raw"/>
      <source protocol="nbd"><host transport="unix" socket="{sock}"/></source>
      <target dev="sda"/></disk></devices></domain>""")
    src = get("libvirtxml").source(InputOptions(args=(str(xml),), bandwidth=8 << 20))
    assert transfer.socket_of(src.disks[0].location) == str(sock), src.disks[0].location


def test_p2v_bandwidth_reaches_v2v_and_bad_rates_are_refused() -> None:
    from pyv2v.p2v import config, wrapper
    from pyv2v.p2v.kernel_cmdline import Cmdline

    cfg = config.Config()
    assert "--bandwidth" not in wrapper.v2v_argv(cfg, False) and not cfg.compress
    config.apply_cmdline(cfg, Cmdline.from_string("p2v.bandwidth=10M p2v.compress"))
    argv = wrapper.v2v_argv(cfg, False)
    assert argv[argv.index("--bandwidth") + 1] == "10M" and cfg.compress
    with pytest.raises(V2VError, match="bits per second"):
        config.apply_cmdline(config.Config(), Cmdline.from_string("p2v.bandwidth=fast"))


@pytest.mark.parametrize("compress", [False, True])
def test_compress_is_ssh_c_on_the_data_connection(tmp_path: Path, compress: bool) -> None:
    from pyv2v import ssh
    from pyv2v.p2v import nbd_export

    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    seen: list[list[str]] = []

    class Session:
        target = ssh.Target(host="conv.example.com", port=22, user="root",
                            known_hosts=str(tmp_path / "kh"))

        def spawn(self, argv: list[str]) -> None:
            seen.append(argv)
            raise V2VError("stop here")

    with pytest.raises(V2VError, match="stop here"):
        nbd_export.open_data_conn(Session(), str(disk), "nbdkit",  # type: ignore[arg-type]
                                  "/tmp/virt-p2v-x/sda.sock", compress)
    assert seen[0][0] == "ssh" and ("-C" in seen[0]) == compress, seen


def test_free_extents_discarded_per_volume_group() -> None:
    calls: list[tuple[str, ...]] = []

    class G:
        def vgs(self) -> list[str]:
            return ["full", "vg0"]

        def lvcreate_free(self, lv: str, vg: str, percent: int) -> None:
            calls.append(("lvcreate_free", lv, vg, str(percent)))
            if vg == "full":
                raise RuntimeError("Insufficient free extents")

        def blkdiscard(self, dev: str) -> None:
            calls.append(("blkdiscard", dev))

    assert usedmap._discard_free_extents(G()) == 1
    assert calls == [("lvcreate_free", usedmap.FREE_LV, "full", "100"),
                     ("lvcreate_free", usedmap.FREE_LV, "vg0", "100"),
                     ("blkdiscard", f"/dev/vg0/{usedmap.FREE_LV}")]
