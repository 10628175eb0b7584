"""`v2v-fleet`: submit a plan, watch, cancel, retry, report; and run a conversion server's worker.

    v2v-fleet submit PLAN.yaml|PLAN.csv       queue one job per entry (checked by v2v's parser)
    v2v-fleet status [--json] [--watch S]     queued / running (stage, progress) / done / failed
    v2v-fleet cancel JOB · retry JOB          stop a job (its processes too) · run it again
    v2v-fleet report [--json]                 outcome, duration, bytes written, boot check
    v2v-fleet worker [--output-storage DIR] [--concurrency N] [--include MODULES]

p2v conversions arriving at a server whose `v2v` sees $PYV2V_FLEET_BROKER are listed too (kind
p2v, p2vjob.py); they can be cancelled here, and are retried from the p2v client.

The broker is --broker URL, else $PYV2V_FLEET_BROKER (use it for a URL with a password),
else redis://127.0.0.1:6379/0.  Errors are one line and a non-zero exit (errors.py's table).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import uuid
from typing import Any, NoReturn

from .. import log
from ..errors import EXIT_INTERNAL, EXIT_OK, EXIT_STATUS_HELP, UsageError, V2VError
from . import plan as fleet_plan
from . import view
from .config import QUEUE, TASK_NAME, broker_url, make_app
from .store import TERMINAL, Store


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message + " (see v2v-fleet --help)")


def build_parser() -> Parser:
    p = Parser(prog="v2v-fleet", description="Many v2v conversions over several conversion "
               "servers (Celery workers, Redis broker).", epilog=EXIT_STATUS_HELP,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", help="redis://[:PASSWORD@]HOST:PORT/DB or rediss://… "
                   "(default: $PYV2V_FLEET_BROKER, else redis://127.0.0.1:6379/0)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    s = sub.add_parser("submit", help="queue the jobs of a YAML or CSV plan")
    s.add_argument("plan")
    s = sub.add_parser("status", help="where every job is")
    s.add_argument("--json", action="store_true")
    s.add_argument("--watch", type=float, metavar="SECONDS",
                   help="refresh every SECONDS until every job has ended")
    sub.add_parser("cancel", help="cancel a queued or running job").add_argument("job")
    sub.add_parser("retry", help="run a failed or cancelled job again").add_argument("job")
    s = sub.add_parser("report", help="per-job outcome, duration, bytes written, boot check")
    s.add_argument("--json", action="store_true")
    w = sub.add_parser("worker", help="run this conversion server's worker")
    w.add_argument("--output-storage", metavar="DIR",
                   help="-os for jobs that give none (outputs writing into a directory)")
    w.add_argument("--concurrency", type=int, metavar="N",
                   help="jobs at once (default: what free memory, output space, CPUs allow)")
    w.add_argument("--job-size", type=float, default=20.0, metavar="GiB",
                   help="output space to reserve per job for the default concurrency (20)")
    w.add_argument("--visibility-timeout", type=float, metavar="SECONDS",
                   help="redeliver a job whose worker is silent this long (default 300)")
    w.add_argument("--name", help="worker name (default pyv2v@HOSTNAME)")
    w.add_argument("--include", metavar="MODULE[,MODULE]",
                   help="more Python modules the worker imports (Celery's --include): site "
                   "hooks, e.g. signal handlers; a module may set pyv2v.fleet.tasks.PIPELINE")
    w.add_argument("--loglevel", default="INFO")
    return p


def submit(url: str, path: str) -> int:
    jobs = fleet_plan.load(path)
    store = Store(url)
    taken = [j.name for j in jobs if store.get(j.name)]
    if taken:
        raise UsageError(f"job {taken[0]} exists already (v2v-fleet retry {taken[0]} runs it "
                         "again; or rename it in the plan)")
    app = make_app(url)
    for j in jobs:
        tid = str(uuid.uuid4())
        if not store.create(j.name, j.argv, tid):
            raise UsageError(f"job {j.name} exists already")
        app.send_task(TASK_NAME, args=[j.name], task_id=tid, queue=QUEUE)
    print(f"submitted {len(jobs)} job{'s' if len(jobs) != 1 else ''}: "
          + " ".join(j.name for j in jobs))
    return EXIT_OK


def _job(store: Store, job_id: str) -> dict[str, str]:
    job = store.get(job_id)
    if job is None:
        raise V2VError(f"no job {job_id} (v2v-fleet status lists them)")
    return job


def cancel(url: str, job_id: str) -> int:
    store = Store(url)
    job = _job(store, job_id)
    if job["state"] in TERMINAL:
        raise V2VError(f"job {job_id} has ended already ({job['state']})")
    store.finish(job_id, "cancelled", error="cancelled by the operator")
    if job.get("kind") == "p2v":
        # Its v2v on the conversion server checks every few seconds and stops itself
        # (p2vjob.py): the p2v client reports the conversion as failed.
        print(f"cancelled {job_id} (p2v conversion on {job.get('server')}: it stops within "
              "seconds)")
        return EXIT_OK
    # A running job's pool process gets SIGTERM: v2v's cancel handlers stop its children.
    make_app(url).control.revoke(job["task"], terminate=True, signal="SIGTERM")
    print(f"cancelled {job_id}" + (f" (running on {job['worker']})"
                                   if job["state"] == "running" else ""))
    return EXIT_OK


def retry(url: str, job_id: str) -> int:
    store = Store(url)
    job = _job(store, job_id)
    if job.get("kind") == "p2v":
        raise V2VError(f"job {job_id} is a p2v conversion: run it again from the p2v client "
                       f"({job.get('source')})")
    if job["state"] not in ("failed", "cancelled"):
        raise V2VError(f"job {job_id} is {job['state']}: only failed or cancelled jobs are "
                       "retried")
    tid = str(uuid.uuid4())
    store.requeue(job_id, tid)
    make_app(url).send_task(TASK_NAME, args=[job_id], task_id=tid, queue=QUEUE)
    print(f"queued {job_id} again")
    return EXIT_OK


def jobs_now(store: Store) -> list[dict[str, str]]:
    """Every job; a running p2v job whose v2v stopped keeping its lease (killed outright, its
    server down) is recorded as failed — a later word from it would still win."""
    jobs = store.all()
    for j in jobs:
        if j.get("kind") == "p2v" and j.get("state") == "running" \
                and store.lease_holder(j["id"]) is None:
            store.finish(j["id"], "failed", error=f"no word from this p2v conversion's v2v on "
                         f"{j.get('server')} (pid {j.get('pid')}) for a minute: it was killed "
                         "or its server went down")
            j.update(store.get(j["id"]) or {})
    return jobs


def status(url: str, as_json: bool, watch: float | None) -> int:
    store = Store(url)
    while True:
        jobs = jobs_now(store)
        print(view.as_json(view.status_rows(jobs)) if as_json else view.status_text(jobs),
              flush=True)
        if not watch or all(j.get("state") in TERMINAL for j in jobs):
            return EXIT_OK
        time.sleep(watch)
        if not as_json:
            print()


def hide_password(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def dispatch(ns: argparse.Namespace) -> int:
    url = broker_url(ns.broker)
    if ns.command == "submit":
        return submit(url, ns.plan)
    if ns.command == "status":
        return status(url, ns.json, ns.watch)
    if ns.command == "cancel":
        return cancel(url, ns.job)
    if ns.command == "retry":
        return retry(url, ns.job)
    if ns.command == "report":
        jobs = jobs_now(Store(url))
        print(view.as_json(view.report_rows(jobs)) if ns.json else view.report_text(jobs))
        return EXIT_OK
    from . import worker

    return worker.run(url, concurrency=ns.concurrency, storage=ns.output_storage, name=ns.name,
                      visibility=ns.visibility_timeout, job_size=int(ns.job_size * 1024**3),
                      loglevel=ns.loglevel,
                      include=[m for m in (ns.include or "").split(",") if m])


def main(argv: list[str] | None = None) -> int:
    """The entry point: one line on stderr and an errors.py exit status for every failure."""
    import redis

    log.configure(prog="v2v-fleet")
    args = list(sys.argv[1:] if argv is None else argv)
    ns: Any = None
    try:
        ns = build_parser().parse_args(args)
        return dispatch(ns)
    except V2VError as e:
        log.error(str(e))
        return e.exit_code
    except redis.exceptions.RedisError as e:
        url = hide_password(broker_url(ns.broker if ns else None))
        log.error(f"broker {url}: {' '.join(str(e).split())}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        log.internal_error(e)
        return EXIT_INTERNAL


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
