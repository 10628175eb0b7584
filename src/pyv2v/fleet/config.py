"""Where the broker is and how the fleet's Celery app delivers jobs.

One Redis serves as Celery's broker and result backend and holds the job table (store.py).
Delivery semantics: a job message is acknowledged only after the task returned (`acks_late`),
i.e. after its output was committed or it failed for good; a pool process that dies has its job
requeued at once (`reject_on_worker_lost`); a worker that dies whole (kill -9, power loss) leaves
the message unacknowledged in Redis, and once its heartbeat (lease.py) has been silent for the
visibility timeout any live worker puts it back in the queue (worker.py's restorer).  Each job
runs in a fresh pool process (`worker_max_tasks_per_child=1`): v2v's cleanup registry, cancel
state and libguestfs handle are per process.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
BROKER_ENV = "PYV2V_FLEET_BROKER"
VISIBILITY_ENV = "PYV2V_FLEET_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY = 300.0   # seconds of heartbeat silence before a job is redelivered
QUEUE = "pyv2v-conversions"
TASK_NAME = "pyv2v.fleet.convert"


def broker_url(option: str | None = None) -> str:
    """--broker, else $PYV2V_FLEET_BROKER (keeps a password out of argv), else localhost."""
    return option or os.environ.get(BROKER_ENV) or DEFAULT_BROKER


def visibility_timeout(option: float | None = None) -> float:
    if option is not None:
        return option
    return float(os.environ.get(VISIBILITY_ENV) or DEFAULT_VISIBILITY)


def make_app(url: str, visibility: float | None = None) -> Any:
    """The fleet's Celery app (imported lazily: only fleet commands need Celery)."""
    from celery import Celery

    app = Celery("pyv2v-fleet", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,
        task_default_queue=QUEUE,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_expires=7 * 24 * 3600,
        broker_transport_options={"visibility_timeout": visibility_timeout(visibility)},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app
