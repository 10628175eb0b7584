"""p2v conversions in the fleet's status view: a server-side `v2v` run started by p2v registers
itself in the job table as a job of kind ``p2v``.

It uses the broker the server's fleet worker uses ($PYV2V_FLEET_BROKER, config.broker_url; for
the ssh sessions p2v opens, set it where those sessions get their environment: sshd's SetEnv or
pam_env).  A p2v run is recognised as virt-p2v's wrapper makes it (PROTOCOL.md §4) — stock
virt-p2v's wrapper as well as ours: `-i libvirtxml …/physical.xml` whose directory is the p2v
work dir ``virt-p2v-YYYYMMDD-XXXXXXXX`` (its `name` file is the guest name).  The job (id
``p2v-GUEST-XXXXXXXX``) records the source (the p2v client's address from SSH_CONNECTION), the
guest, this server, stages and copy progress (FleetMonitor), and the outcome: done (bytes
written) · failed (the one error line) · cancelled, with the `--verify-boot` verdict line when
the run asked for the boot check (a guest that did not boot fails the job, as in fleet jobs).

Registration never fails a conversion: any broker error is one warning line on stderr (the
conversion log), after which the run goes on unregistered.  While it runs, a thread keeps the
job's lease alive and obeys `v2v-fleet cancel`: a job marked cancelled gets this process
SIGTERM, i.e. v2v's own cancel (children stopped, staging aborted; p2v reports the failure).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import log, process
from ..errors import Cancelled, V2VError
from ..v2v import verifyboot
from ..v2v.luks import redact_argv
from ..v2v.monitor import Monitor
from .config import BROKER_ENV
from .store import PREFIX, Store

WORKDIR_RE = re.compile(r"virt-p2v-\d{8}-(?P<suffix>[0-9a-z]{8})")
BEAT = 3.0  # seconds between lease refreshes / cancel checks
LEASE = 60  # a p2v job whose v2v has been silent this long is failed by status (cli.jobs_now)


class TolerantStore(Store):
    """The job table, where a broker error warns once and turns every later write into a
    no-op: the conversion itself must never depend on the broker."""

    def __init__(self, url: str) -> None:
        import redis

        super().__init__(
            url,
            redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5
            ),
        )
        self.url, self.broken = url, False

    def _fail(self, e: Exception) -> None:
        if not self.broken:
            self.broken = True
            where = re.sub(r"//[^@/]*@", "//***@", self.url)
            log.warning(
                f"fleet broker {where}: {' '.join(str(e).split())}; this p2v "
                "conversion goes on without appearing in v2v-fleet status"
            )

    def update(self, job_id: str, **fields: object) -> None:
        if not self.broken:
            try:
                super().update(job_id, **fields)
            except Exception as e:  # noqa: BLE001 - any broker trouble: warn once, go on
                self._fail(e)

    def finish(self, job_id: str, state: str, **fields: object) -> None:
        if not self.broken:
            try:
                super().finish(job_id, state, **fields)
            except Exception as e:  # noqa: BLE001
                self._fail(e)

    def register(self, job_id: str, fields: dict[str, str]) -> bool:
        try:
            if not self.r.zadd(f"{PREFIX}jobs", {job_id: time.time()}, nx=True):
                raise V2VError(f"job id {job_id} is taken")
            self.r.hset(self.key(job_id), mapping=fields)
            self.r.set(self.lease_key(job_id), str(os.getpid()), ex=LEASE)
            return True
        except Exception as e:  # noqa: BLE001
            self._fail(e)
            return False


def p2v_workdir(ns: argparse.Namespace) -> str | None:
    """The p2v work dir this run converts from, or None when it is not a p2v run."""
    if ns.input != "libvirtxml" or len(ns.args) != 1:
        return None
    xml = os.path.abspath(ns.args[0])
    if os.path.basename(xml) != "physical.xml":
        return None
    d = os.path.dirname(xml)
    return d if WORKDIR_RE.fullmatch(os.path.basename(d)) else None


def job_fields(workdir: str, argv: list[str]) -> tuple[str, dict[str, str]]:
    import json

    try:
        with open(os.path.join(workdir, "name")) as f:
            guest = f.read().strip() or "guest"
    except OSError:
        guest = "guest"
    m = WORKDIR_RE.fullmatch(os.path.basename(workdir))
    suffix = m["suffix"] if m else "x"
    job_id = "p2v-" + re.sub(r"[^A-Za-z0-9._-]", "_", guest)[:40] + "-" + suffix
    client = (os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or "").split()
    now = f"{time.time():.3f}"
    return job_id, {
        "id": job_id,
        "kind": "p2v",
        "argv": json.dumps(redact_argv(argv)),
        "state": "running",
        "stage": "starting",
        "progress": "",
        "worker": socket.gethostname(),
        "server": socket.gethostname(),
        "source": client[0] if client else "unknown",
        "guest": guest,
        "workdir": workdir,
        "pid": str(os.getpid()),
        "task": "",
        "attempts": "1",
        "deliveries": "1",
        "error": "",
        "submitted": now,
        "started": now,
        "finished": "",
        "bytes": "",
        "verify": "",
    }


class Run:
    """What v2v's cli gets: the monitor to run the pipeline with; `end` records the outcome."""

    def __init__(
        self, monitor: Monitor, store: TolerantStore | None = None, job_id: str = ""
    ) -> None:
        self.monitor, self.store, self.job_id = monitor, store, job_id
        self.meta: Any = None
        self.verdict = ""  # the --verify-boot result line, once the boot check has run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if store is not None:
            self._thread = threading.Thread(target=self._beat, name="fleet-p2v", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        assert self.store is not None
        while not self._stop.wait(BEAT) and not self.store.broken:
            try:
                self.store.r.expire(self.store.lease_key(self.job_id), LEASE)
                if self.store.r.hget(self.store.key(self.job_id), "state") == "cancelled":
                    log.message("cancelled from v2v-fleet")
                    os.kill(os.getpid(), signal.SIGTERM)  # v2v's own cancel handlers
                    return
            except Exception:  # noqa: BLE001 - a broker hiccup: the next beat tries again
                pass

    def verifying(self) -> None:
        """The output is written; the boot check (`--verify-boot`) starts."""
        if self.store is not None:
            from .tasks import written

            self.store.update(
                self.job_id, stage=verifyboot.STAGE, bytes=written(self.meta)
            )

    def end(self, error: BaseException | None) -> None:
        self._stop.set()
        if self.store is None:
            return
        from .tasks import one_line, written

        extra: dict[str, object] = {"verify": one_line(self.verdict)} if self.verdict else {}
        if error is None:
            self.store.finish(
                self.job_id, "done", bytes=written(self.meta), stage="done", progress=100, **extra
            )
        elif isinstance(error, (Cancelled, KeyboardInterrupt)) or process.cancelled():
            self.store.finish(self.job_id, "cancelled", error="cancelled", **extra)
        elif self.verdict:  # written, but the guest did not boot
            self.store.finish(
                self.job_id, "failed", stage="boot check failed", bytes=written(self.meta),
                error=extra["verify"], **extra,
            )
        elif isinstance(error, V2VError):
            self.store.finish(self.job_id, "failed", error=one_line(str(error)))
        else:
            self.store.finish(
                self.job_id,
                "failed",
                error=one_line(f"internal error: {type(error).__name__}: {error}"),
            )
        if not self.store.broken:
            try:
                self.store.r.delete(self.store.lease_key(self.job_id))
            except Exception:  # noqa: BLE001
                pass


def start(ns: argparse.Namespace, argv: list[str], monitor: Monitor) -> Run:
    url = os.environ.get(BROKER_ENV)
    workdir = p2v_workdir(ns)
    if not url or workdir is None:
        return Run(monitor)
    try:
        store = TolerantStore(url)
    except Exception as e:  # noqa: BLE001 - e.g. the fleet extra (redis) is not installed
        log.warning(
            f"fleet broker: {' '.join(str(e).split())}; this p2v conversion goes on "
            "without appearing in v2v-fleet status"
        )
        return Run(monitor)
    job_id, fields = job_fields(workdir, argv)
    if not store.register(job_id, fields):
        return Run(monitor)
    from .monitor import FleetMonitor

    return Run(FleetMonitor(store, job_id), store, job_id)


@contextmanager
def track(ns: argparse.Namespace, argv: list[str], monitor: Monitor) -> Iterator[Run]:
    """Register a p2v run when the server has a fleet broker configured (else a no-op)."""
    run = start(ns, argv, monitor)
    try:
        yield run
    except BaseException as e:
        run.end(e)
        raise
    run.end(None)
