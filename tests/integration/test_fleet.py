"""The fleet with real conversions: a private redis-server, two real `v2v-fleet worker`s with
separate output directories, v2v's real pipeline on the debian12-physical fixture (TCG).

One plan of five jobs: four real conversions mixing inputs — `-i disk`, `-i libvirtxml` (a
domain XML written here for the fixture), `-i ova` (the generated VMware OVA, read in place from
its tar) and `-i vmx` (monolithicSparse VMDK; pyv2v_harness.vmware) — and a bad input.  The bad
input fails once with one line and is not retried.  The worker converting the disk job is killed
-9 (its whole process tree, as a power loss) once the job's stage shows the appliance
inspecting; its leftover staging dir is removed when it restarts (under a new name), the job is
redelivered to a live worker and finishes exactly once.  All four end done, each output exactly
once across the two output dirs, converted by both workers; the libvirtxml job carries
`--verify-boot`, so the worker boots its committed output (v2v's own check) and `report` shows
"booted" (the converted OVA itself is booted by test_v2v_vmware_inputs.py).  Then a real
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
from v2v_helpers import vmware_domain_xml

from pyv2v_harness import vmware

pytestmark = [pytest.mark.slow, pytest.mark.boot]
HEAVY = ("qemu", "nbdkit", "qemu-img", "qemu-nbd", "nbdcopy")


def heavy(w: object) -> list[str]:
    return [line for line in tagged(w.tag)  # type: ignore[attr-defined]
            if line.split()[1:2] and Path(line.split()[1]).name.startswith(HEAVY)]


MAC = "52:54:00:17:00:01"
GUESTS = ("web1", "xml1", "ova1", "vmx1")
VERIFIED = ("xml1",)


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
    xml = src / "xml1.xml"
    xml.write_text(vmware_domain_xml("xml1", image, [MAC]))
    ova, vmx = vmware.ensure_export("ova-vmware"), vmware.ensure_export("vmx-sparse")
    a = fleet.worker("a", tmp_path / "a", visibility=20)
    b = fleet.worker("b", tmp_path / "b", visibility=20)
    plan = write_plan(tmp_path, {
        "broken": ["-i", "disk", str(src / "missing.img")],
        "web1": ["-i", "disk", str(image), "-on", "web1"],
        "xml1": ["-i", "libvirtxml", str(xml), "-on", "xml1", "--verify-boot"],
        "ova1": ["-i", "ova", str(ova), "-on", "ova1"],
        "vmx1": ["-i", "vmx", str(vmx), "-on", "vmx1"]})
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
    assert list(first.storage.glob(".web1-*.pyv2v-partial"))   # the dead worker's leftover
    # Restarted at once (a new name: the redelivery must not go to the dead worker's name) so
    # that two workers share the rest of the batch; it removes the leftover before any job.
    restarted = fleet.worker(f"{first.name}2", first.storage, visibility=20)
    assert not list(first.storage.glob(".web1-*.pyv2v-partial"))

    fleet.wait(lambda: fleet.job("broken").get("state") == "failed", 60)
    fleet.wait(lambda: all(fleet.job(n).get("state") in ("done", "failed", "cancelled")
                           for n in GUESTS), 1800, "the four conversions to finish")
    took = time.monotonic() - t0
    jobs = {n: fleet.job(n) for n in GUESTS}
    assert all(j["state"] == "done" for j in jobs.values()), jobs
    web1, broken = jobs["web1"], fleet.job("broken")
    assert web1["worker"] != f"pyv2v@{first.name}" and web1["deliveries"] == "2"
    assert all(jobs[n]["deliveries"] == "1" for n in GUESTS if n != "web1")
    assert all(int(j["bytes"]) > 100 * 1024**2 for j in jobs.values())
    assert broken["deliveries"] == "1" and "missing.img" in broken["error"]
    assert "\n" not in broken["error"]
    for n in GUESTS:   # each guest exactly once, in the output dir of the worker that ran it
        disks = [p for d in (a.storage, b.storage) for p in d.glob(f"{n}-sd*")]
        assert [p.name for p in disks] == [f"{n}-sda"], disks
        owner = {f"pyv2v@{other.name}": other.storage,
                 f"pyv2v@{restarted.name}": first.storage}[jobs[n]["worker"]]
        assert disks[0].parent == owner and (owner / f"{n}.xml").exists()
    workers = {j["worker"] for j in jobs.values()}
    assert workers == {f"pyv2v@{other.name}", f"pyv2v@{restarted.name}"}, workers
    assert not [p for d in (a.storage, b.storage) for p in d.glob(".*.pyv2v-partial")]
    for n in VERIFIED:   # the boot check ran on the worker, after the commit: booted
        assert jobs[n]["verify"].startswith("Boot verification: booted: "), jobs[n]
        assert f"network: {MAC if n == 'xml1' else vmware.MAC0} " in jobs[n]["verify"]
    rep = {r["job"]: r for r in json.loads(fleet.cli("report", "--json").stdout)}
    assert all(rep[n]["verify_boot"] == jobs[n]["verify"] for n in VERIFIED)
    assert all(rep[n]["verify_boot"] == "not requested" for n in GUESTS if n not in VERIFIED)
    report = fleet.cli("report").stdout
    assert report.count("booted: ") == len(VERIFIED) and "not requested" in report
    print(f"killed after {killed_at:.0f} s; four done after {took:.0f} s; "
          + "; ".join(f"{n} on {j['worker']} in {float(j['finished']) - float(j['started']):.0f} s"
                      for n, j in jobs.items()))

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
