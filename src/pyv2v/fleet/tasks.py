"""The fleet's one Celery task: run v2v's pipeline for a job, exactly as `v2v` would.

The Plan is built by v2v's own parser (`cli.parse` + `cli.make_plan`); a job without `-os` for
an output writing files into a directory gets the worker's `--output-storage`.  Outcomes:
done (output committed, bytes recorded) · failed (V2VError: bad input or environment, one line,
never retried automatically) · cancelled (SIGTERM from `v2v-fleet cancel`: v2v's cancel
handlers kill the job's children and abort its staging).  The task returns normally in all of
these, so the message is acknowledged only then; a worker that dies first leaves it to be
redelivered.  A delivery that finds its job finished, cancelled, superseded by an operator's
retry, or leased by another live worker (a duplicate) does not convert it again; one that finds
the commit record of a delivery that died after committing (commit.py) finishes it as done.
A job whose arguments carry `--verify-boot` then boots its committed output once, as `v2v
--verify-boot` does (verifyboot.verify, stage "Verifying that the guest boots"): the verdict line
is recorded in the job (`verify`, shown by `report`); a guest that did not boot fails the job
with that line (a failure, so never retried: it would not boot on a retry either).
`PIPELINE` is v2v's `pipeline.run` and `VERIFY` (pipeline metadata → Verdict) v2v's boot check
unless a module the worker imports (`v2v-fleet worker --include MODULE`, Celery's own option)
sets them: the fleet's tests run fakes costing seconds.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

from .. import log, process
from ..errors import Cancelled, V2VError
from ..v2v import verifyboot
from . import commit
from .config import TASK_NAME, visibility_timeout
from .lease import Heartbeat
from .monitor import FleetMonitor
from .store import TERMINAL, Store

PIPELINE: Callable[[Any, Any], Any] | None = None   # None: v2v's pipeline.run
VERIFY: Callable[[Any], Any] | None = None          # None: v2v's verifyboot.verify
NOT_VERIFIED = "not run: the output was committed by an earlier delivery that died"


def register(app: Any) -> Any:
    """Register the convert task on `app`; returns the task."""

    @app.task(name=TASK_NAME, bind=True)
    def convert(self: Any, job_id: str) -> dict[str, Any]:
        return run_delivery(self.app, job_id, self.request.id, self.request.hostname)

    return convert


def run_delivery(app: Any, job_id: str, task_id: str, hostname: str | None) -> dict[str, Any]:
    store = Store(app.conf.broker_url)
    visibility = visibility_timeout(app.conf.broker_transport_options.get("visibility_timeout"))
    worker = hostname or socket.gethostname()
    job = store.get(job_id)
    if skip(job, task_id):
        return {"job": job_id, "state": job["state"] if job else "unknown", "converted": False}
    hb = Heartbeat(store, job_id, task_id, f"{worker}:{os.getpid()}", visibility).start()
    try:
        while not hb.take_lease():   # a duplicate delivery: wait for the holder to end or die
            time.sleep(min(5.0, hb.interval))
            job = store.get(job_id)
            if skip(job, task_id):
                return {"job": job_id, "state": job["state"] if job else "unknown",
                        "converted": False}
        job = store.get(job_id)
        if skip(job, task_id):
            return {"job": job_id, "state": job["state"] if job else "unknown",
                    "converted": False}
        assert job is not None
        return run_job(store, job, worker, app.conf.get("pyv2v_output_storage"))
    finally:
        hb.stop()


def skip(job: dict[str, str] | None, task_id: str) -> bool:
    return job is None or job.get("task") != task_id or job.get("state") in TERMINAL


def run_job(store: Store, job: dict[str, str], worker: str,
            default_storage: str | None) -> dict[str, Any]:
    import json

    job_id = job["id"]
    store.incr(job_id, "deliveries")
    store.update(job_id, state="running", worker=worker, started=f"{time.time():.3f}",
                 stage="starting", progress="", error="")
    process.install_cancel_handlers()
    log.configure(prog=f"v2v-fleet[{job_id}]")
    monitor = FleetMonitor(store, job_id)
    state, fields = "done", {}
    try:
        argv = json.loads(job["argv"])
        if job.get("commit"):   # an earlier delivery died at or after its commit
            outcome, size = commit.resolve(job["commit"])
            if outcome == "done":
                extra = {"verify": NOT_VERIFIED} if wants_verify(argv) else {}
                store.finish(job_id, "done", bytes=size, progress=100,
                             stage="done (committed by an earlier delivery)", **extra)
                return {"job": job_id, "state": "done", "converted": False}
            if outcome == "lost":
                raise V2VError(commit.lost_error(job["commit"], job.get("worker", "?")))
            store.update(job_id, commit="")
        plan = build_plan(argv, default_storage)
        meta = pipeline_function()(plan, monitor)
        fields = {"bytes": written(meta), "stage": "done", "progress": 100}
        if wants_verify(argv):
            state, fields = verify_output(store, job_id, meta, fields)
    except (Cancelled, KeyboardInterrupt):
        state, fields = "cancelled", {"error": "cancelled"}
    except V2VError as e:
        state = "cancelled" if process.cancelled() else "failed"
        fields = {"error": "cancelled" if state == "cancelled" else one_line(str(e))}
    except Exception as e:  # noqa: BLE001 - a bug: recorded as a failure, the worker goes on
        state = "cancelled" if process.cancelled() else "failed"
        fields = {"error": one_line(f"internal error: {type(e).__name__}: {e}")}
    finally:
        process.cleanup_all()
        monitor.close()
    store.finish(job_id, state, **fields)
    return {"job": job_id, "state": state, "converted": state == "done"}


def one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def build_plan(argv: list[str], default_storage: str | None) -> Any:
    """v2v's Plan for `argv`; outputs writing into a directory default to the worker's."""
    from ..v2v import cli, outputs
    from ..v2v.outputs.base import FilesOutput

    ns = cli.parse(argv)
    cls = outputs.OUTPUTS.get(ns.output)
    if ns.output_storage is None and default_storage and cls and issubclass(cls, FilesOutput):
        ns.output_storage = default_storage
    return cli.make_plan(ns)


def wants_verify(argv: list[str]) -> bool:
    from ..v2v import cli

    return bool(cli.parse(argv).verify_boot)


def verify_output(store: Store, job_id: str, meta: Any,
                  fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Boot the committed output once: ("done" | "failed", the job's fields with the verdict)."""
    store.update(job_id, stage=verifyboot.STAGE, bytes=fields["bytes"])
    verdict = verify_function()(meta)
    line = one_line(verdict.line())
    log.message(line)
    if verdict.ok:
        return "done", {**fields, "verify": line}
    for text in getattr(verdict, "console_tail", ())[-5:]:
        log.message(f"  console: {text}")
    return "failed", {**fields, "verify": line, "error": line, "stage": "boot check failed"}


def verify_function() -> Callable[[Any], Any]:
    if VERIFY is not None:
        return VERIFY

    def verify(meta: Any) -> Any:
        return verifyboot.verify(meta.disks, meta.caps, [n.mac for n in meta.nics])

    return verify


def pipeline_function() -> Callable[[Any, Any], Any]:
    if PIPELINE is not None:
        return PIPELINE
    from ..v2v import pipeline

    return pipeline.run


def written(meta: Any) -> int:
    """Bytes the output holds: allocated blocks of local disk files, else their size."""
    total = 0
    for d in getattr(meta, "disks", ()):
        try:
            total += os.stat(d.path).st_blocks * 512
        except (OSError, TypeError):
            total += int(getattr(d, "size", 0) or 0)
    return total
