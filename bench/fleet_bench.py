"""Fleet throughput (run by `make bench`): jobs/hour with one and with two workers.

A private redis-server on 127.0.0.1 and real `v2v-fleet worker`s (concurrency 1 each, own
output dirs), each run converting JOBS copies of the debian12-physical fixture (`-i disk … -o
local`, read through overlays, so the jobs share one source image), timed from submit to the
last job done.  Printed as jobs/hour and the 2-worker/1-worker ratio, with the load average
before each run (other work on the machine lowers the ratio), and written to
bench/results/fleet-<UTC time>.json (jobs, seconds and jobs/hour per worker count, the ratio,
the load average at start, git HEAD), saved after each run so an interrupted bench keeps it.
On this 2-core TCG machine the ceiling is the CPUs: each job's appliance keeps a core busy (TCG
emulation, the initramfs rebuild inside it), and qemu-img/nbdkit/the worker need CPU too, so two
workers can at best double the rate; measured 1.15 (48.0 → 55.3 jobs/hour, 4 jobs: 300 s and
260 s; bench/results/fleet-20261126T235959Z.json) on a machine shared with other jobs (load
0.3 before the first run, 3.4 before the second).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from redis_fixtures import Fleet, free_port  # noqa: E402

from pyv2v_harness.fixtures import ensure_image  # noqa: E402

JOBS = int(os.environ.get("PYV2V_BENCH_FLEET_JOBS", "4"))
RESULTS = HERE / "results"


def one_run(image: Path, workers: int, tmp: Path) -> tuple[float, int]:
    """(seconds from submit to the last job ending, jobs done)."""
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                              "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                             stdout=subprocess.DEVNULL)
    fleet = Fleet(f"redis://127.0.0.1:{port}/0", tmp)
    try:
        time.sleep(0.5)
        for i in range(workers):
            fleet.worker(f"w{i}", tmp / f"out{i}")
        plan = tmp / "plan.yaml"
        plan.write_text(json.dumps([{"name": f"vm{j}", "args": ["-i", "disk", str(image), "-o",
                                                                "local", "-on", f"vm{j}"]}
                                    for j in range(JOBS)]))
        start = time.monotonic()
        r = fleet.cli("submit", str(plan))
        if r.returncode:
            raise RuntimeError(r.stderr.strip())
        fleet.wait(lambda: all(fleet.job(f"vm{j}").get("state") in ("done", "failed", "cancelled")
                               for j in range(JOBS)), 3600)
        took = time.monotonic() - start
        bad = [j for j in range(JOBS) if fleet.job(f"vm{j}")["state"] != "done"]
        if bad:
            print(f"  ! {len(bad)} job(s) did not finish: {fleet.job(f'vm{bad[0]}')['error']}")
        return took, JOBS - len(bad)
    finally:
        for w in fleet.workers:
            w.stop()
        redis.terminate()
        redis.wait(10)


def main() -> int:
    image = ensure_image("debian12-physical")
    print(f"\nfleet: {JOBS} conversions of debian12-physical (-o local), concurrency 1 per worker")
    head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "git_head": head,
        "jobs": JOBS, "image": image.name, "concurrency_per_worker": 1,
        "cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "runs": {}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    dest = RESULTS / f"fleet-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    rates = {}
    for workers in (1, 2):
        load = os.getloadavg()
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyv2v-fleet-bench-") as tmp:
            took, done = one_run(image, workers, Path(tmp))
        print(f"  (load average before the run: {' '.join(f'{x:.1f}' for x in load)})")
        rates[workers] = done / took * 3600
        print(f"  {workers} worker{'s' if workers > 1 else ' '}: {took:7.1f} s  "
              f"{rates[workers]:6.1f} jobs/hour ({done}/{JOBS} done)")
        report["runs"][str(workers)] = {
            "workers": workers, "seconds": round(took, 1), "jobs_done": done,
            "jobs_per_hour": round(rates[workers], 2),
            "load_average_before": [round(x, 2) for x in load]}
        dest.write_text(json.dumps(report, indent=2) + "\n")
    ratio = rates[2] / rates[1] if rates[1] else 0.0
    report["ratio_2_over_1"] = round(ratio, 3)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dest.write_text(json.dumps(report, indent=2) + "\n")
    print(f"  ratio 2 workers / 1 worker: {ratio:.2f} "
          f"(ceiling ~{min(2, os.cpu_count() or 1)}: {os.cpu_count()} CPUs, TCG, one core a job)")
    print(f"  written: {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
