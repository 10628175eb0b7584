"""`v2v-fleet worker`'s default concurrency (worker.affordable): the smallest of what free memory,
free output space and the CPUs allow, at least 1; the reason names each limit."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from pyv2v.fleet import worker

GiB = 1024**3


def limits(monkeypatch: pytest.MonkeyPatch, *, mem: int, cpus: int | None, free: int,
           memsize: str | None = None) -> list[str]:
    """Monkeypatch the host; returns the paths statvfs was asked about."""
    asked: list[str] = []

    def statvfs(path: str) -> SimpleNamespace:
        asked.append(path)
        return SimpleNamespace(f_bavail=free // 4096, f_frsize=4096)

    monkeypatch.setattr(worker, "mem_available", lambda: mem)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(os, "statvfs", statvfs)
    if memsize is None:
        monkeypatch.delenv("PYV2V_APPLIANCE_MEMSIZE", raising=False)
    else:
        monkeypatch.setenv("PYV2V_APPLIANCE_MEMSIZE", memsize)
    return asked


def test_memory_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2048 MiB appliance + 512 MiB per job: 8 GiB affords 3 jobs
    asked = limits(monkeypatch, mem=8 * GiB, cpus=16, free=100 * GiB)
    assert worker.affordable("/out", 10 * GiB) == (
        3, "memory allows 3, cpus allows 16, disk allows 10")
    assert asked == ["/out"]


def test_appliance_memsize_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    limits(monkeypatch, mem=8 * GiB, cpus=16, free=100 * GiB, memsize="512")   # 1 GiB a job
    assert worker.affordable("/out", 10 * GiB)[0] == 8


def test_disk_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    limits(monkeypatch, mem=64 * GiB, cpus=8, free=25 * GiB)
    n, why = worker.affordable("/out", 10 * GiB)
    assert n == 2 and "disk allows 2" in why


def test_cpus_win_and_no_storage_no_disk_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = limits(monkeypatch, mem=64 * GiB, cpus=2, free=0)
    assert worker.affordable(None, 10 * GiB) == (2, "memory allows 25, cpus allows 2")
    assert asked == []   # each job its own -os: no output storage to measure


def test_floor_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    limits(monkeypatch, mem=1 * GiB, cpus=None, free=1 * GiB)   # nothing affords a job
    assert worker.affordable("/out", 10 * GiB) == (
        1, "memory allows 0, cpus allows 1, disk allows 0")
