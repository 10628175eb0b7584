"""A stand-in for v2v's pipeline in the fleet's cheap tests ($PYV2V_FLEET_PIPELINE).

The job's input file (-i disk FILE) is JSON: {"seconds": N, "fail": "message"}.  The fake
records each start in OUTDIR/runs.log, reports a "Converting" stage, runs a `sleep` child through
pyv2v.process (as nbdkit would run), stages its output with v2v's real Staging, sleeps N seconds
(in steps, reporting progress) and commits NAME-sda — or raises V2VError(fail).
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace
from typing import Any

from pyv2v import process
from pyv2v.errors import V2VError
from pyv2v.v2v.outputs.staging import Staging


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
    disk = staging.create(os.path.join(outdir, f"{name}-sda"))
    child = process.spawn(["sleep", "1000"])
    monitor.disk_start(0, 1, 100)
    monitor.stage(f"Converting (child {child.pid})")
    steps = max(1, int(spec.get("seconds", 0) * 10))
    for i in range(steps):
        time.sleep(0.1)
        monitor.progress(0, (i + 1) / steps)
    with open(disk, "w") as f:
        f.write("disk")
    child.terminate()
    staging.commit()
    return SimpleNamespace(disks=[SimpleNamespace(path=os.path.join(outdir, f"{name}-sda"),
                                                  size=4)])
