"""The fleet with real conversions: a private redis-server, two real `v2v-fleet worker`s with
separate output directories, v2v's real pipeline on the debian12-physical fixture (TCG).

One plan of two jobs: a real `-i disk … -o local` conversion and a bad input.  The bad input
fails once with one line and is not retried.  The worker converting the good job is killed -9
(its whole process tree, as a power loss) once the job's stage shows the appliance inspecting;
the job is redelivered to the other worker and finishes there exactly once (one guest, no
partial dirs; the dead worker's leftover staging dir is removed when it restarts).  Then a real
conversion is cancelled while its appliance runs: no qemu/nbdkit/qemu-img of it survives.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from proc_helpers import tagged
from redis_fixtures import Fleet, fleet  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
HEAVY = ("qemu", "nbdkit", "qemu-img", "qemu-nbd", "nbdcopy")


def heavy(w: object) -> list[str]:
    return [line for line in tagged(w.tag)  # type: ignore[attr-defined]
            if line.split()[1:2] and Path(line.split()[1]).name.startswith(HEAVY)]


def write_plan(tmp: Path, jobs: dict[str, list[str]]) -> str:
    p = tmp / "plan.yaml"
    p.write_text(json.dumps({"defaults": {"args": ["-o", "local"]},
                             "jobs": [{"name": n, "args": a} for n, a in jobs.items()]}))
    return str(p)


def test_fleet_real_conversions(fleet: Fleet, tmp_path: Path,  # noqa: F811
                                debian12_physical: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    image = src / "web1.img"
    shutil.copy(debian12_physical, image)   # a private copy: the cached fixture stays shared
    a = fleet.worker("a", tmp_path / "a", visibility=20)
    b = fleet.worker("b", tmp_path / "b", visibility=20)
    plan = write_plan(tmp_path, {"web1": ["-i", "disk", str(image), "-on", "web1"],
                                 "broken": ["-i", "disk", str(src / "missing.img")]})
    r = fleet.cli("submit", plan)
    assert r.returncode == 0, r.stderr

    t0 = time.monotonic()
    # Mid-job: the appliance is up and inspecting (the converter's own lines are log messages,
    # not Monitor stages).
    fleet.wait(lambda: fleet.job("web1").get("stage", "") == "Inspecting the source", 400,
               "web1 to reach the inspection stage")
    first = {"pyv2v@a": a, "pyv2v@b": b}[fleet.job("web1")["worker"]]
    other = b if first is a else a
    first.kill9()
    killed_at = time.monotonic() - t0

    fleet.wait(lambda: fleet.job("broken").get("state") == "failed", 60)
    fleet.wait(lambda: fleet.job("web1").get("state") in ("done", "failed"), 600,
               "web1 to finish on the other worker")
    web1, broken = fleet.job("web1"), fleet.job("broken")
    assert web1["state"] == "done", web1
    assert web1["worker"] == f"pyv2v@{other.name}" and web1["deliveries"] == "2"
    assert int(web1["bytes"]) > 100 * 1024**2
    assert broken["deliveries"] == "1" and "missing.img" in broken["error"]
    assert "\n" not in broken["error"]
    disks = sorted(p.name for d in (a.storage, b.storage) for p in d.glob("web1-sd*"))
    assert disks == ["web1-sda"] and (other.storage / "web1-sda").exists()
    assert not list(other.storage.glob(".*.pyv2v-partial"))
    assert list(first.storage.glob(".web1-*.pyv2v-partial"))   # the dead worker's leftover
    fleet.worker(first.name, first.storage, visibility=20)
    assert not list(first.storage.glob(".*.pyv2v-partial"))     # removed by its restart
    print(f"killed after {killed_at:.0f} s; done after {time.monotonic() - t0:.0f} s")
    report = fleet.cli("report").stdout
    assert "web1" in report and "done" in report and "not requested" in report

    # Cancel a real conversion while its appliance (qemu) runs: nothing of it survives.
    plan = write_plan(tmp_path, {"web2": ["-i", "disk", str(image), "-on", "web2"]})
    assert fleet.cli("submit", plan).returncode == 0
    w = None

    def qemu_running() -> bool:
        nonlocal w
        for cand in fleet.workers[-3:]:
            if cand.proc.poll() is None and heavy(cand):
                w = cand
                return True
        return False

    fleet.wait(qemu_running, 300, "web2's appliance to start")
    assert w is not None
    assert fleet.cli("cancel", "web2").returncode == 0
    fleet.wait(lambda: not heavy(w), 60, "web2's processes to stop")
    fleet.wait(lambda: fleet.job("web2").get("state") == "cancelled", 30)
    assert w.proc.poll() is None   # the worker itself lives on
    assert not list(w.storage.glob("web2*")) and not list(w.storage.glob(".web2-*"))
