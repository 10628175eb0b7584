"""Fleet delivery semantics with a real redis-server and real Celery workers, and a fake
pipeline (tests/fleet_fake.py) so each job costs seconds: a bad input fails once and is not
retried; a worker killed -9 mid-job has the job finished by another worker exactly once; a
cancel stops the job's processes; an operator's retry runs a failed job again; a duplicate
delivery of a running job waits instead of converting twice."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from proc_helpers import tagged
from redis_fixtures import Fleet, fleet  # noqa: F401 - the fixture

# Heartbeats against a 4 s visibility timeout: not while the other xdist worker loads the CPUs
# (one group, so the tests run back to back and wait for the machine once).
pytestmark = [pytest.mark.exclusive, pytest.mark.xdist_group("fleet-delivery")]



def plan(tmp: Path, jobs: dict[str, dict[str, object]], extra: tuple[str, ...] = ()) -> str:
    entries = []
    for name, spec in jobs.items():
        src = tmp / f"{name}.json"
        src.write_text(json.dumps(spec))
        entries.append({"name": name, "args": ["-i", "disk", str(src), "-on", name, *extra]})
    p = tmp / "plan.yaml"
    p.write_text(json.dumps({"defaults": {"args": ["-o", "local"]}, "jobs": entries}))
    return str(p)


def runs(*dirs: Path) -> list[str]:
    return [line.split()[0] for d in dirs if (d / "runs.log").exists()
            for line in (d / "runs.log").read_text().splitlines()]


def status(fleet: Fleet) -> dict[str, list[str]]:  # noqa: F811
    """`v2v-fleet status` (the text table): {"head": the counts line, JOB: the row's fields}."""
    r = fleet.cli("status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split()[:5] == ["JOB", "KIND", "STATE", "WORKER", "TIME"], lines
    return {"head": lines[0], **{ln.split()[0]: ln.split()[1:] for ln in lines[2:]}}


def leftovers(*dirs: Path) -> list[str]:
    return [p.name for d in dirs for p in d.iterdir() if p.name.endswith(".pyv2v-partial")]


def test_bad_input_fails_once_good_job_done(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    a = fleet.worker("a", tmp_path / "a", fake=True)
    b = fleet.worker("b", tmp_path / "b", fake=True)
    # "ok" runs longer than the visibility timeout (4 s): its heartbeat keeps it delivered once.
    r = fleet.cli("submit", plan(tmp_path, {"ok": {"seconds": 7},
                                            "bad": {"fail": "disk x: no such file"}}))
    assert r.returncode == 0, r.stderr
    fleet.wait(lambda: fleet.job("ok").get("state") == "done"
               and fleet.job("bad").get("state") == "failed", 240)
    time.sleep(3)   # a retry, if there were one, would start within this
    bad = fleet.job("bad")
    assert bad["error"] == "disk x: no such file" and bad["deliveries"] == "1"
    assert runs(a.storage, b.storage).count("bad") == 1
    received = sum(w.log.read_text().count("] received") for w in (a, b))
    assert received == 2, "a job was delivered twice"
    st = json.loads(fleet.cli("status", "--json").stdout)
    assert {j["job"]: j["state"] for j in st} == {"ok": "done", "bad": "failed"}
    table = fleet.cli("status").stdout
    assert "disk x: no such file" in table and "done 1" in table
    rep = {r["job"]: r for r in json.loads(fleet.cli("report", "--json").stdout)}
    assert rep["ok"]["bytes_written"] and rep["ok"]["outcome"] == "done"
    assert rep["ok"]["verify_boot"] == "not requested"

    # An operator's retry runs it again (attempt 2); a done job is not retried.
    assert fleet.cli("retry", "ok").returncode == 1
    assert fleet.cli("retry", "bad").returncode == 0
    fleet.wait(lambda: fleet.job("bad").get("deliveries") == "2"
               and fleet.job("bad").get("state") == "failed", 240)
    assert fleet.job("bad")["attempts"] == "2"
    r = fleet.cli("cancel", "nosuch")
    assert r.returncode == 1 and r.stderr.count("\n") == 1


def test_verify_boot_result_reported_failure_fails_once(fleet: Fleet,  # noqa: F811
                                                         tmp_path: Path) -> None:
    """--verify-boot in a plan entry boots the committed output (the fake VERIFY): a guest that
    booted shows its verdict line in report/report --json; one that did not fails the job with
    that line, delivered once (never retried); a job without the option is not verified."""
    a = fleet.worker("a", tmp_path / "a", fake=True)
    jobs = {"up": {"seconds": 0}, "down": {"seconds": 0, "boot": "initramfs"}}
    assert fleet.cli("submit", plan(tmp_path, jobs, ("--verify-boot",))).returncode == 0
    assert fleet.cli("submit", plan(tmp_path, {"plain": {"seconds": 0}})).returncode == 0
    fleet.wait(lambda: all(fleet.job(n).get("state") in ("done", "failed")
                           for n in ("up", "down", "plain")), 120)
    time.sleep(3)   # a retry, if there were one, would start within this
    up, down = fleet.job("up"), fleet.job("down")
    assert up["state"] == "done", up
    assert up["verify"] == ("Boot verification: booted: login after 2 s; network: "
                            "52:54:00:00:00:01 10.0.2.15")
    assert down["state"] == "failed" and down["deliveries"] == "1"
    assert down["error"] == down["verify"] == (
        "Boot verification: FAILED: initramfs (Gave up waiting for root file system device) "
        "after 3 s; network: none configured")
    assert (a.storage / "down-sda").exists()   # committed before the check: kept for a look
    verified = (a.storage / "verify.log").read_text().split()[::2]
    assert sorted(verified) == ["down", "up"]
    rep = {r["job"]: r for r in json.loads(fleet.cli("report", "--json").stdout)}
    assert rep["up"]["verify_boot"] == up["verify"] and rep["up"]["outcome"] == "done"
    assert rep["down"]["verify_boot"] == down["verify"] and rep["down"]["outcome"] == "failed"
    assert rep["plain"]["verify_boot"] == "not requested"
    text = fleet.cli("report").stdout
    assert "booted: login after 2 s" in text and "FAILED: initramfs" in text
    assert text.count("Gave up waiting") == 1   # the failure's line said once


def test_kill9_worker_redelivered_exactly_once(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    w1 = fleet.worker("a", tmp_path / "a", fake=True)
    w2 = fleet.worker("b", tmp_path / "b", fake=True)
    assert fleet.cli("submit", plan(tmp_path, {"vm": {"seconds": 8}})).returncode == 0
    fleet.wait(lambda: fleet.job("vm").get("stage", "").startswith("Converting"), 120)
    a, b = (w1, w2) if fleet.job("vm")["worker"] == "pyv2v@a" else (w2, w1)
    assert leftovers(a.storage)
    a.kill9()
    fleet.wait(lambda: fleet.job("vm").get("state") == "done", 240)
    job = fleet.job("vm")
    assert job["worker"] == f"pyv2v@{b.name}" and job["deliveries"] == "2"
    assert runs(a.storage, b.storage) == ["vm", "vm"]
    guests = [p.name for d in (a.storage, b.storage) for p in d.iterdir() if p.name == "vm-sda"]
    assert guests == ["vm-sda"] and (b.storage / "vm-sda").exists()
    assert leftovers(b.storage) == []
    assert leftovers(a.storage)          # what the dead worker left …
    fleet.worker(a.name, a.storage, fake=True)
    assert leftovers(a.storage) == []    # … its restart removes
    time.sleep(6)                        # > visibility timeout: nothing is delivered again
    assert runs(a.storage, b.storage) == ["vm", "vm"]


def test_cancel_stops_the_job_and_its_children(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    a = fleet.worker("a", tmp_path / "a", fake=True)
    assert fleet.cli("submit", plan(tmp_path, {"long": {"seconds": 300},
                                               "next": {"seconds": 0}})).returncode == 0
    # Its first progress report follows the stage (0.1 s later in the fake; longer under load:
    # CI read the table in between once).
    fleet.wait(lambda: fleet.job("long").get("stage", "").startswith("Converting")
               and fleet.job("long").get("progress", "") != "", 120)
    child = int(fleet.job("long")["stage"].split("child ")[1].rstrip(")"))
    assert any(line.startswith(f"{child} sleep") for line in tagged(a.tag))
    # The status table while one runs and one waits (concurrency 1): counts, state, worker, stage.
    table = status(fleet)
    assert table["head"].startswith("queued 1 · running 1 · done 0 · failed 0 · cancelled 0")
    assert table["long"][:3] == ["v2v", "running", "pyv2v@a"], table
    assert table["long"][4:7] == ["Converting", "(child", f"{child})"], table
    assert table["long"][7].endswith("%") and len(table["long"]) == 8, table   # its progress
    assert table["next"][:3] == ["v2v", "queued", "-"], table
    r = fleet.cli("cancel", "long")
    assert r.returncode == 0, r.stderr
    fleet.wait(lambda: not any(" sleep 1000" in line for line in tagged(a.tag)), 80,
               "the job's child to be stopped")
    fleet.wait(lambda: fleet.job("next").get("state") == "done", 240)   # the worker goes on
    assert fleet.job("long")["state"] == "cancelled"
    table = status(fleet)
    assert table["head"].startswith("queued 0 · running 0 · done 1 · failed 0 · cancelled 1")
    assert table["long"][:3] == ["v2v", "cancelled", "pyv2v@a"] and table["long"][4:] == [
        "cancelled"], table
    assert table["next"][:3] == ["v2v", "done", "pyv2v@a"], table
    assert leftovers(a.storage) == [] and not (a.storage / "long-sda").exists()
    assert fleet.cli("cancel", "long").returncode == 1   # ended already
    assert fleet.cli("retry", "long").returncode == 0     # … but it can be run again


def test_duplicate_delivery_waits_for_the_live_holder(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    """A second delivery of a job a live worker holds (its lease) does not convert it again."""
    from pyv2v.fleet.config import QUEUE, TASK_NAME, make_app

    a = fleet.worker("a", tmp_path / "a", fake=True)
    b = fleet.worker("b", tmp_path / "b", fake=True)
    assert fleet.cli("submit", plan(tmp_path, {"vm": {"seconds": 6}})).returncode == 0
    fleet.wait(lambda: fleet.job("vm").get("stage", "").startswith("Converting"), 120)
    make_app(fleet.url).send_task(TASK_NAME, args=["vm"], task_id=fleet.job("vm")["task"],
                                  queue=QUEUE)
    fleet.wait(lambda: fleet.job("vm").get("state") == "done", 240)
    time.sleep(3)
    assert runs(a.storage, b.storage) == ["vm"] and fleet.job("vm")["deliveries"] == "1"
    assert os.path.exists(a.storage / "vm-sda") != os.path.exists(b.storage / "vm-sda")


def test_killed_after_commit_redelivery_finishes_as_done(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    """The worker dies after the output was committed, before the outcome was recorded and the
    message acknowledged (the fake holds right there): the redelivered job recognises its own
    committed output by commit.py's record and finishes as done — not "guest exists", no
    second conversion, no duplicate.  Both workers share one output directory (as shared
    storage would), so a redelivery that converted again would hit the existing guest."""
    shared = tmp_path / "out"
    a = fleet.worker("a", shared, fake=True)
    b = fleet.worker("b", shared, fake=True)
    spec = {"vm": {"seconds": 1, "hold_after_commit": True}}
    assert fleet.cli("submit", plan(tmp_path, spec)).returncode == 0
    fleet.wait(lambda: fleet.job("vm").get("stage") == "Committed, holding", 120)
    holder, other = (a, b) if fleet.job("vm")["worker"] == "pyv2v@a" else (b, a)
    assert (shared / "vm-sda").exists() and (shared / "vm.xml").exists()
    holder.kill9()
    fleet.wait(lambda: fleet.job("vm").get("state") in ("done", "failed"), 240)
    job = fleet.job("vm")
    assert job["state"] == "done", job
    assert job["worker"] == f"pyv2v@{other.name}" and job["deliveries"] == "2"
    assert job["stage"] == "done (committed by an earlier delivery)" and int(job["bytes"]) > 0
    assert runs(shared) == ["vm"]                       # converted once
    assert sorted(p.name for p in shared.iterdir()) == ["runs.log", "vm-sda", "vm.xml"]
