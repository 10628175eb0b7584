"""Interop: our p2v drives Debian's stock virt-v2v 2.2.0 over a private sshd (PROTOCOL.md).

The debian12-physical fixture image stands in for the physical disk (--disk); the conversion
server is the same machine, reached through ssh with its sessions set up for TCG.  One
conversion per session (minutes under TCG), several tests looking at it.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from p2v_fixtures import Sshd, p2v_children

from pyv2v.p2v.conversion import Conversion
from pyv2v.p2v.events import Event, Finished, HostKey, RemoteLine, ServerInfoEvent
from pyv2v_harness.fixtures.builder import sha256_file as sha256

pytestmark = pytest.mark.slow

REMOTE_FILES = ("time", "name", "physical.xml", "virt-v2v-wrapper.sh", "status", "environment",
                "v2v-version", "virt-v2v-conversion-log.txt", "dmesg", "lscpu", "p2v-version")


@dataclass
class Interop:
    result: Finished
    events: list[Event]
    outdir: Path
    seconds: float
    sha_before: str
    sha_after: str


@pytest.fixture(scope="session")
def stock_interop(p2v_sshd_stock: Sshd, debian12_physical: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Interop:
    tmp = tmp_path_factory.mktemp("p2v-interop")
    outdir = tmp / "out"
    outdir.mkdir()
    before = sha256(debian12_physical)
    cfg = p2v_sshd_stock.config(tmp, disks=[str(debian12_physical)], guestname="p2vdeb12",
                                output_type="local", output_storage=str(outdir),
                                memory=2 << 30, cores=2)
    conv = Conversion(cfg)
    events: list[Event] = []
    conv.subscribe(events.append)
    t0 = time.monotonic()
    result = conv.run()
    seconds = time.monotonic() - t0
    return Interop(result, events, outdir, seconds, before, sha256(debian12_physical))


def test_stock_virt_v2v_conversion_completes(stock_interop: Interop) -> None:
    r = stock_interop.result
    lines = [e.text for e in stock_interop.events if isinstance(e, RemoteLine)]
    assert r.ok and r.exit_code == 0, f"{r.message}\n" + "\n".join(lines[-60:])
    assert any("Converting" in ln for ln in lines) and any("Copying disk 1/1" in ln for ln in lines)
    info = [e for e in stock_interop.events if isinstance(e, ServerInfoEvent)]
    assert info and info[0].version.startswith("2.")
    assert [e for e in stock_interop.events if isinstance(e, HostKey)]
    print(f"p2v → stock virt-v2v: {stock_interop.seconds:.0f} s")


def test_output_written(stock_interop: Interop) -> None:
    disk = stock_interop.outdir / "p2vdeb12-sda"
    xml = (stock_interop.outdir / "p2vdeb12.xml").read_text()
    assert disk.exists() and "<name>p2vdeb12</name>" in xml and "virtio" in xml
    out = subprocess.run(["qemu-img", "info", "--output=json", str(disk)], capture_output=True,
                         text=True, check=True).stdout
    assert '"virtual-size": 2147483648' in out


def test_source_unchanged(stock_interop: Interop) -> None:
    assert stock_interop.sha_before == stock_interop.sha_after


def test_remote_work_dir_complete(stock_interop: Interop) -> None:
    rdir = Path(stock_interop.result.remote_dir or "")
    for name in REMOTE_FILES:
        assert (rdir / name).exists(), name
    assert (rdir / "status").read_text().strip() == "0"
    assert (rdir / "v2v-version").read_text().startswith("virt-v2v 2.")
    env = (rdir / "environment").read_text()
    assert "LIBGUESTFS_BACKEND=direct" in env


def test_nothing_left_running(stock_interop: Interop) -> None:
    assert stock_interop.result.remote_dir
    assert p2v_children() == []


def descendants(root: int) -> set[int]:
    """root and every process below it (from /proc)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    return {p for p in found if p in parent}


def running(pid: int) -> bool:
    """Alive and not a zombie (this machine's init may be slow to reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_cancel_stock_virt_v2v_mid_conversion(p2v_sshd_stock: Sshd, debian12_physical: Path,
                                              tmp_path: Path) -> None:
    """Cancel while the stock virt-v2v runs its appliance: its whole process tree goes."""
    import threading

    cfg = p2v_sshd_stock.config(tmp_path, disks=[str(debian12_physical)], guestname="p2vcancel",
                                output_type="null", output_storage=None)
    conv = Conversion(cfg)
    events: list[Event] = []
    conv.subscribe(events.append)
    results: list[Finished] = []
    t = threading.Thread(target=lambda: results.append(conv.run()))
    t.start()
    deadline = time.monotonic() + 600
    while not any(isinstance(e, RemoteLine) and "Inspecting the source" in e.text
                  for e in events):
        assert time.monotonic() < deadline and t.is_alive(), f"not started: {results}"
        time.sleep(0.5)
    rdir = Path(conv.remote_dir or "")
    tree = descendants(int((rdir / "control.pid").read_text()))
    names = {Path(f"/proc/{p}/exe").resolve().name for p in tree if Path(f"/proc/{p}").exists()}
    assert {"virt-v2v", "qemu-system-x86_64"} <= names, names
    t0 = time.monotonic()
    conv.cancel()
    t.join(120)
    took = time.monotonic() - t0
    assert results and results[0].cancelled, results
    deadline = time.monotonic() + 30
    while alive := [p for p in tree if running(p)]:
        assert time.monotonic() < deadline, f"still running: {alive}"
        time.sleep(0.5)
    assert p2v_children() == []
    print(f"cancel of the stock virt-v2v took {took:.1f} s")
