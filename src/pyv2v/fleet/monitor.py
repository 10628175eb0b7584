"""A v2v Monitor that also forwards a job's stages and copy progress to the job table.

It prints what v2v's plain Monitor prints (on the worker's stderr) and records the last stage and
the overall copy progress (size-weighted over the disks, whole percents, at most about once a
second) in the job's hash, where `v2v-fleet status` reads them; and, just before the output is
committed, commit.py's record of the files being published.
"""

from __future__ import annotations

import time
from typing import Any

from ..v2v.monitor import Monitor
from . import commit
from .store import Store


class FleetMonitor(Monitor):
    def __init__(self, store: Store, job_id: str) -> None:
        super().__init__()
        self.store, self.job_id = store, job_id
        self._sizes: dict[int, int] = {}
        self._done: dict[int, float] = {}
        self._sent = (-1, 0.0)   # (percent, when)

    def stage(self, text: str) -> None:
        super().stage(text)
        self.store.update(self.job_id, stage=text)

    def committing(self, target: Any) -> None:
        super().committing(target)
        self.store.update(self.job_id, commit=commit.record(target))

    def disk_start(self, index: int, total: int, size: int) -> None:
        super().disk_start(index, total, size)
        with self._lock:
            self._sizes[index] = max(1, size)
            self._done[index] = 0.0

    def progress(self, index: int, fraction: float) -> None:
        super().progress(index, fraction)
        with self._lock:
            self._done[index] = fraction
            total = sum(self._sizes.values()) or 1
            pct = int(100 * sum(self._sizes.get(i, 1) * f for i, f in self._done.items()) / total)
            last_pct, last_t = self._sent
            now = time.monotonic()
            if pct == last_pct or (now - last_t < 1.0 and pct < 100):
                return
            self._sent = (pct, now)
        self.store.update(self.job_id, progress=pct)
