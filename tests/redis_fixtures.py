"""A private redis-server on 127.0.0.1 (a free port, no persistence) and real `v2v-fleet worker`
subprocesses, for the fleet's tests.

    def test_x(fleet):                      # fleet.url: the broker; stopped after the test
        w = fleet.worker("a", tmp_path / "a")          # waits until it answers a ping
        fleet.cli("submit", str(plan))                 # runs .venv's v2v-fleet
        fleet.wait(lambda: fleet.job("web1")["state"] == "done", 60)

Each worker runs in its own session with a tagged environment (proc_helpers), so a test can
kill -9 all of it and list what it left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from proc_helpers import tag_env, tagged

FLEET = str(Path(sys.executable).with_name("v2v-fleet"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    tag: str
    log: Path
    storage: Path

    def kill9(self) -> None:
        """kill -9 the whole worker (as a power loss would): its process group and every
        process carrying its tag (v2v's children run in their own sessions)."""
        for _ in range(3):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for line in tagged(self.tag):
                try:
                    os.kill(int(line.split()[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        self.kill9()


@dataclass
class Fleet:
    url: str
    tmp: Path
    workers: list[Worker] = field(default_factory=list)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "PYV2V_FLEET_BROKER": self.url, "PYTHONUNBUFFERED": "1",
                **(extra or {})}

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FLEET, *args], env=self.env(), capture_output=True, text=True,
                              timeout=60, check=check)

    def worker(self, name: str, storage: Path, *, concurrency: int = 1,
               visibility: float = 4.0, env: dict[str, str] | None = None,
               fake: bool = False) -> Worker:
        """A real worker; `fake`: it imports tests/fleet_fake.py (--include), which replaces
        v2v's pipeline with a fake costing seconds."""
        storage.mkdir(parents=True, exist_ok=True)
        extra = dict(env or {})
        if fake:
            extra["PYTHONPATH"] = str(Path(__file__).resolve().parent)
        full, tag = tag_env(self.env(extra))
        log = self.tmp / f"worker-{name}-{len(self.workers)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [FLEET, "worker", "--name", name, "--output-storage", str(storage),
                 "--concurrency", str(concurrency), "--visibility-timeout", str(visibility),
                 *(["--include", "fleet_fake"] if fake else [])],
                env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        w = Worker(name, proc, tag, log, storage)
        self.workers.append(w)
        self.wait(lambda: self.ping(name), 60, f"worker {name} did not answer", w)
        return w

    def ping(self, name: str) -> bool:
        from pyv2v.fleet.config import make_app

        return bool(make_app(self.url).control.ping(destination=[f"pyv2v@{name}"], timeout=1.0))

    def store(self) -> Any:
        from pyv2v.fleet.store import Store

        return Store(self.url)

    def job(self, job_id: str) -> dict[str, str]:
        return self.store().get(job_id) or {}

    def wait(self, pred: Callable[[], bool], timeout: float, what: str = "condition",
             worker: Worker | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            if worker is not None and worker.proc.poll() is not None:
                break
            time.sleep(0.25)
        logs = "\n".join(f"--- {w.log.name}\n{w.log.read_text()[-3000:]}" for w in self.workers)
        raise AssertionError(f"timed out waiting: {what}\n{logs}")


def _answers_as(port: int, pid: int) -> bool:
    """Is the redis on `port` the process `pid`?  (The port was free a moment ago; a test on the
    other xdist worker may have started its own redis there since.)"""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"INFO server\r\n")
            s.settimeout(2)
            data = b""
            while b"process_id:" not in data or not data.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False
    return f"process_id:{pid}\r\n".encode() in data


def start_redis(data: Path, tries: int = 5) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server of our own on a free loopback port (another port if it loses the race)."""
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    for _ in range(tries):
        port = free_port()
        proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                 "--appendonly", "no", "--dir", str(data),
                                 "--protected-mode", "yes"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers_as(port, proc.pid):
                return proc, port
            time.sleep(0.05)
        proc.kill()
        proc.wait(10)
    raise AssertionError(f"no private redis-server started in {tries} tries")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    data = tmp_path / "redis"
    data.mkdir()
    proc, port = start_redis(data)
    url = f"redis://127.0.0.1:{port}/0"
    f = Fleet(url, tmp_path)
    try:
        yield f
    finally:
        for w in f.workers:
            w.stop()
        proc.terminate()
        proc.wait(10)
