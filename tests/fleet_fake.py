"""A stand-in for v2v's pipeline in the fleet's cheap tests: `v2v-fleet worker --include
fleet_fake` (with tests/ on PYTHONPATH) imports this module, which sets
pyv2v.fleet.tasks.PIPELINE and VERIFY — nothing in the product knows about them.

The job's input file (-i disk FILE) is JSON: {"seconds": N, "fail": "message",
"hold_after_commit": true}.  The fake records each start in OUTDIR/runs.log, reports a
"Converting" stage, runs a `sleep` child through pyv2v.process (as nbdkit would run), stages its
output with v2v's real Target/Staging, sleeps N seconds (in steps, reporting progress), tells the
monitor it is committing (as pipeline.run does) and commits NAME-sda and NAME.xml — or raises
V2VError(fail).  With hold_after_commit it then reports the stage "Committed, holding" and
waits there for ever: the fault point where a test kills the worker (after the commit, before
the outcome is recorded and the message acknowledged).  With --verify-boot the fake boot
check (VERIFY) records the job in OUTDIR/verify.log and returns v2v's real Verdict: booted at the
login prompt, or with {"boot": "initramfs"} (any failure outcome) not booted.
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace
from typing import Any

from pyv2v import process
from pyv2v.errors import V2VError
from pyv2v.fleet import tasks
from pyv2v.v2v.outputs.base import FileDestination, Target
from pyv2v.v2v.outputs.staging import Staging
from pyv2v.v2v.verifyboot import Verdict


def run(plan: Any, monitor: Any) -> Any:
    spec = json.loads(open(plan.input_opts.args[0]).read())
    outdir = plan.output_opts.storage
    name = plan.output_name or "guest"
    with open(os.path.join(outdir, "runs.log"), "a") as f:
        f.write(f"{name} {os.getpid()}\n")
    monitor.stage("Setting up the destination")
    if spec.get("fail"):
        raise V2VError(spec["fail"])
    staging = Staging(outdir, name)
    dest = FileDestination(staging, os.path.join(outdir, f"{name}-sda"), "raw")
    target = Target((dest,), staging)
    child = process.spawn(["sleep", "1000"])
    monitor.disk_start(0, 1, 100)
    monitor.stage(f"Converting (child {child.pid})")
    steps = max(1, int(spec.get("seconds", 0) * 10))
    for i in range(steps):
        time.sleep(0.1)
        monitor.progress(0, (i + 1) / steps)
    with open(dest.staged, "w") as f:
        f.write("disk")
    staging.write_text(os.path.join(outdir, f"{name}.xml"), f"<domain><name>{name}</name>"
                       "</domain>\n")
    child.terminate()
    monitor.committing(target)
    target.commit()
    if spec.get("hold_after_commit"):
        monitor.stage("Committed, holding")
        while True:
            time.sleep(1)
    return SimpleNamespace(disks=[SimpleNamespace(path=dest.location, size=4)], spec=spec,
                           name=name, outdir=outdir)


def verify(meta: Any) -> Verdict:
    with open(os.path.join(meta.outdir, "verify.log"), "a") as f:
        f.write(f"{meta.name} {os.getpid()}\n")
    outcome = meta.spec.get("boot", "login")
    if outcome == "login":
        return Verdict(True, "login", 2.0, {"52:54:00:00:00:01": "10.0.2.15"})
    return Verdict(False, outcome, 3.0, detail="Gave up waiting for root file system device",
                   console_tail=["(initramfs)"])


tasks.PIPELINE = run
tasks.VERIFY = verify
