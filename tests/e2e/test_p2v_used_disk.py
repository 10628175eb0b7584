"""End to end on a disk in service (issue 16): our p2v → loopback sshd → our v2v with the
used-disk fixture (debian12-physical whose free space holds old random data, every block
non-zero).  One conversion shows: only the used blocks cross the tunnel (counted at p2v's NBD
server: the bytes its nbdkit processes read, sampled from /proc/PID/io, an upper bound), the
data ssh killed once mid-pull (as soon as bytes land in v2v's copy) is re-established and the
pull resumes, every pulled range is verified against p2v's own hashes of the disk, the source
is unchanged, and the converted guest boots to a login prompt on virtio.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from p2v_real import P2V, conversion_server, pulled_bytes, wait_until
from proc_helpers import exited_unreaped, tagged
from v2v_fixtures import sha256

from pyv2v_harness import bootcheck, demo
from pyv2v_harness.fixtures import manifest
from pyv2v_harness.fixtures.used import ensure_used

pytestmark = [pytest.mark.slow]


def nbdkit_reads(tag: str, seen: dict[int, int], stop: threading.Event) -> None:
    """Keep the largest rchar of every nbdkit p2v starts (one per data connection)."""
    while not stop.wait(0.05):
        for p in tagged(tag):
            pid, _, cmd = p.partition(" ")
            if not cmd.startswith("nbdkit"):
                continue
            try:
                with open(f"/proc/{pid}/io") as f:
                    rchar = int(next(ln for ln in f if ln.startswith("rchar:")).split()[1])
            except (OSError, StopIteration, ValueError):
                continue
            seen[int(pid)] = max(seen.get(int(pid), 0), rchar)


@pytest.mark.boot
def test_used_disk_moves_only_used_blocks_resumes_verifies_and_boots(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("building the used-disk fixture needs root (loop devices)")
    source = ensure_used("debian12-physical")
    used = int(str(manifest(source)["used_bytes"]))
    before = sha256(source)
    srv, pull = conversion_server(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    seen: dict[int, int] = {}
    stop = threading.Event()
    try:
        run = P2V.start(srv, source, out, "p2vused")
        sampler = threading.Thread(target=nbdkit_reads, args=(run.tag, seen, stop), daemon=True)
        sampler.start()
        wait_until(lambda: pulled_bytes(pull) > 0 or run.proc.poll() is not None, 900,
                   "the server to start pulling the disk")
        ssh = run.data_ssh_pids()
        assert len(ssh) == 1 and run.proc.poll() is None, run.out
        os.kill(ssh[0], signal.SIGKILL)
        assert exited_unreaped(run.proc.pid, 1800), run.out
        stop.set()
        sampler.join(5)
        rc = run.finish()
        rdir = run.remote_dir()
        log = (rdir / "virt-v2v-conversion-log.txt").read_text(errors="replace")
    finally:
        stop.set()
        srv.stop()
    print(f"\n{run.out}\nbytes read by p2v's nbdkit: {seen} total {sum(seen.values())}; "
          f"used {used}")
    assert rc == 0, run.out[-3000:] + log[-3000:]
    assert sha256(source) == before
    # resumed: the server noticed, p2v reconnected, the pull went on
    assert "Data connection dropped at " in log and "reconnections)" in log, log[-3000:]
    assert run.saw("re-established") and len(seen) >= 2, (run.out, seen)
    # verified end to end, reported in p2v's stream and its final summary
    assert "GiB of sda: identical to the source" in log
    assert any(ln.endswith("GiB verified.") and "Conversion finished successfully" in ln
               for ln in run.lines), run.out
    # only the used data crossed the tunnel (map + pull, the old data in free space did not)
    assert sum(seen.values()) <= used * 1.10, (sum(seen.values()), used)
    disk, xml = out / "p2vused-sda", out / "p2vused.xml"
    res = bootcheck.boot(disk, bus="virtio-blk", nic_model="virtio-net-pci",
                         mac=demo.first_mac(xml), timeout=600,
                         console_log=tmp_path / "console.log")
    assert res.outcome == "login", f"see {res.console_log}"
