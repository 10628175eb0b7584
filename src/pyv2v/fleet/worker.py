"""`v2v-fleet worker`: one Celery worker on a conversion server, with a concurrency it affords.

Default concurrency = min(free memory / per-job memory (the appliance's PYV2V_APPLIANCE_MEMSIZE
plus 512 MiB for qemu-img, nbdkit and the worker), free space in the output storage / --job-size,
CPUs), at least 1; `--concurrency` overrides it.  At startup the worker removes staging dirs
that dead conversions left in its output storage (staging.remove_stale), and while it runs a
restorer thread returns to the queue every message whose worker stopped beating for the
visibility timeout (lease.py) — Celery's Redis transport checks that only every ~100 s.
`--include` modules are imported by the worker (Celery's `include`) before its pool forks.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from .. import log
from ..v2v.outputs.staging import remove_stale
from .config import QUEUE, make_app, visibility_timeout
from .tasks import register

GiB = 1024**3


def mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2 * GiB


def affordable(storage: str | None, job_size: int) -> tuple[int, str]:
    """(concurrency, why) from free memory, free output space and CPUs."""
    per_job_mem = (int(os.environ.get("PYV2V_APPLIANCE_MEMSIZE", "2048")) + 512) * 1024**2
    limits = {"memory": mem_available() // per_job_mem, "cpus": os.cpu_count() or 1}
    if storage:
        st = os.statvfs(storage)
        limits["disk"] = st.f_bavail * st.f_frsize // max(1, job_size)
    n = max(1, min(limits.values()))
    return n, ", ".join(f"{k} allows {v}" for k, v in limits.items())


def restorer(app: Any, period: float, stop: threading.Event) -> None:
    """Put messages unacknowledged for longer than the visibility timeout back in the queue."""
    while not stop.wait(period):
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.qos.restore_visible(num=1000, interval=1)
        except Exception as e:  # noqa: BLE001 - the broker may be restarting: try again later
            log.debug(f"restorer: {e}")


def run(url: str, *, concurrency: int | None, storage: str | None, name: str | None,
        visibility: float | None, job_size: int, loglevel: str = "INFO",
        include: list[str] | None = None) -> int:
    vt = visibility_timeout(visibility)
    if storage:
        storage = os.path.abspath(storage)
        for path in remove_stale(storage):
            log.message(f"removed a dead conversion's staging directory {path}")
    n, why = affordable(storage, job_size)
    if concurrency:
        n, why = concurrency, "--concurrency"
    hostname = name or socket.gethostname()
    hostname = hostname if "@" in hostname else f"pyv2v@{hostname}"
    log.message(f"worker {hostname}: concurrency {n} ({why}); output storage "
                f"{storage or '(each job its -os)'}; visibility timeout {vt:g} s")
    app = make_app(url, vt)
    app.conf.pyv2v_output_storage = storage
    app.conf.include = list(include or ())   # imported before the pool forks
    register(app)
    stop = threading.Event()
    threading.Thread(target=restorer, args=(app, min(10.0, max(1.0, vt / 4)), stop),
                     name="fleet-restorer", daemon=True).start()
    try:
        app.worker_main(["worker", f"--concurrency={n}", "--pool=prefork", f"--hostname={hostname}",
                         "--without-gossip", "--without-mingle", "--without-heartbeat",
                         f"--loglevel={loglevel}", "-Q", QUEUE])
    finally:
        stop.set()
    return 0
