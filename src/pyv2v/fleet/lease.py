"""Heartbeats of a running job: its broker message stays invisible and its lease alive.

Celery's Redis transport redelivers an unacknowledged message once it has been in the
``unacked_index`` sorted set for longer than the visibility timeout — also a message whose job is
still running on a healthy worker, which would run a conversion twice.  So, while a job runs, a
thread in its pool process refreshes the message's score there (the transport's own bookkeeping:
score = delivery time, key and tag as kombu stores them) and the job's lease in the job table.
A worker that dies stops beating; after the visibility timeout its message is restored to the
queue (worker.py) and the lease has expired, so another worker takes the job over.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from .store import Store

UNACKED = "unacked"              # kombu.transport.redis defaults (no global_keyprefix)
UNACKED_INDEX = "unacked_index"


def find_delivery_tag(r: Any, task_id: str) -> str | None:
    """The broker delivery tag of the unacknowledged message carrying `task_id`."""
    for tag, raw in r.hscan_iter(UNACKED, count=200):
        if task_id not in raw:
            continue
        try:
            message = json.loads(raw)[0]
        except (ValueError, IndexError, TypeError):
            continue
        if message.get("headers", {}).get("id") == task_id:
            return str(tag)
    return None


class Heartbeat:
    """Every `interval` s: keep our message's delivery time fresh and (once taken) the lease."""

    def __init__(self, store: Store, job_id: str, task_id: str, holder: str,
                 visibility: float) -> None:
        self.store, self.job_id, self.task_id, self.holder = store, job_id, task_id, holder
        self.visibility = visibility
        self.interval = max(0.5, visibility / 4)
        self.leased = False
        self._tag: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def take_lease(self) -> bool:
        self.leased = self.store.take_lease(self.job_id, self.holder, self.visibility)
        return self.leased

    def beat(self) -> None:
        r = self.store.r
        if self._tag is None:
            self._tag = find_delivery_tag(r, self.task_id)
        if self._tag is not None:
            r.zadd(UNACKED_INDEX, {self._tag: time.time()}, xx=True)
        if self.leased:
            self.store.extend_lease(self.job_id, self.holder, self.visibility)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a broker hiccup must not kill the conversion
                pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.leased:
            self.store.drop_lease(self.job_id, self.holder)
            self.leased = False
