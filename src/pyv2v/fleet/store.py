"""The job table: one Redis hash per job, the status every fleet command reads and writes.

Fields (all strings): id, argv (JSON list: v2v's arguments), state (queued · running · done ·
failed · cancelled), stage and progress (the Monitor's last event), worker, task (the Celery task
id of the current attempt), attempts (operator retries + 1), deliveries (times a worker started
it: > attempts means a redelivery), error (one line), submitted/started/finished (epoch
seconds), bytes (written to the output), verify (the boot check's result), commit (commit.py's
record of the files being published).  p2v jobs (p2vjob.py) add kind, source, guest, server.
A job's lease
(``…:lease:ID``, a key with a TTL refreshed by its running worker) says a live worker has it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

PREFIX = "pyv2v:fleet:"
STATES = ("queued", "running", "done", "failed", "cancelled")
TERMINAL = ("done", "failed", "cancelled")

# Compare-and-expire / compare-and-delete: only the lease's holder may extend or drop it.
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then " \
          "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
_DROP = "if redis.call('get', KEYS[1]) == ARGV[1] then " \
        "return redis.call('del', KEYS[1]) else return 0 end"


def connect(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=30)


class Store:
    def __init__(self, url: str, client: Any = None) -> None:
        self.r = client if client is not None else connect(url)

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}"

    def create(self, job_id: str, argv: list[str], task: str) -> bool:
        """Add a queued job; False if the id is taken."""
        if not self.r.zadd(f"{PREFIX}jobs", {job_id: time.time()}, nx=True):
            return False
        self.r.hset(self.key(job_id), mapping={
            "id": job_id, "argv": json.dumps(argv), "state": "queued", "stage": "",
            "progress": "", "worker": "", "task": task, "attempts": "1", "deliveries": "0",
            "error": "", "submitted": f"{time.time():.3f}", "started": "", "finished": "",
            "bytes": "", "verify": ""})
        return True

    def get(self, job_id: str) -> dict[str, str] | None:
        job: dict[str, str] = self.r.hgetall(self.key(job_id))
        return job or None

    def ids(self) -> list[str]:
        return list(self.r.zrange(f"{PREFIX}jobs", 0, -1))

    def all(self) -> list[dict[str, str]]:
        jobs = [self.get(i) for i in self.ids()]
        return [j for j in jobs if j]

    def update(self, job_id: str, **fields: object) -> None:
        self.r.hset(self.key(job_id), mapping={k: str(v) for k, v in fields.items()})

    def incr(self, job_id: str, field: str) -> int:
        return int(self.r.hincrby(self.key(job_id), field, 1))

    def finish(self, job_id: str, state: str, **fields: object) -> None:
        """Record a terminal state (a cancel already recorded is kept: it wins over a failure
        its own teardown caused)."""
        if state != "cancelled" and self.r.hget(self.key(job_id), "state") == "cancelled":
            state = "cancelled"
        self.update(job_id, state=state, finished=f"{time.time():.3f}", **fields)

    def requeue(self, job_id: str, task: str) -> None:
        """An operator's retry: a new attempt under a new task id, the old outcome cleared."""
        self.r.hincrby(self.key(job_id), "attempts", 1)
        self.update(job_id, state="queued", task=task, stage="", progress="", error="",
                    started="", finished="", bytes="", worker="", commit="", verify="")

    # Leases ---------------------------------------------------------------------------------

    def lease_key(self, job_id: str) -> str:
        return f"{PREFIX}lease:{job_id}"

    def take_lease(self, job_id: str, holder: str, ttl: float) -> bool:
        return bool(self.r.set(self.lease_key(job_id), holder, nx=True, ex=max(1, int(ttl))))

    def extend_lease(self, job_id: str, holder: str, ttl: float) -> bool:
        return bool(self.r.eval(_EXTEND, 1, self.lease_key(job_id), holder, max(1, int(ttl))))

    def drop_lease(self, job_id: str, holder: str) -> None:
        self.r.eval(_DROP, 1, self.lease_key(job_id), holder)

    def lease_holder(self, job_id: str) -> str | None:
        holder: str | None = self.r.get(self.lease_key(job_id))
        return holder


def counts(jobs: Iterable[dict[str, str]]) -> dict[str, int]:
    out = dict.fromkeys(STATES, 0)
    for j in jobs:
        out[j.get("state", "queued")] = out.get(j.get("state", "queued"), 0) + 1
    return out
