"""A p2v job's `--verify-boot` verdict in the fleet's job table (p2vjob.Run), and the server-side
switch that asks it of every p2v conversion ($PYV2V_VERIFY_BOOT: virt-p2v cannot pass options)."""

from __future__ import annotations

from typing import Any

import pytest

from pyv2v.errors import V2VError
from pyv2v.fleet import p2vjob
from pyv2v.v2v import cli, verifyboot


class FakeRedis:
    """The few hash calls Store makes (a unit-level stand-in for redis-server)."""

    def __init__(self) -> None:
        self.h: dict[str, dict[str, str]] = {}

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.h.setdefault(key, {}).update(mapping)

    def hget(self, key: str, field: str) -> str | None:
        return self.h.get(key, {}).get(field)

    def delete(self, key: str) -> None:
        self.h.pop(key, None)


class Meta:
    disks: tuple[Any, ...] = ()


def run_with_store() -> tuple[p2vjob.Run, FakeRedis]:
    store = p2vjob.TolerantStore.__new__(p2vjob.TolerantStore)
    fake = FakeRedis()
    store.r, store.url, store.broken = fake, "redis://x", False
    run = p2vjob.Run(p2vjob.Monitor(), None, "p2v-web1-abcd1234")
    run.store = store  # no lease thread: nothing to beat in a unit test
    run.meta = Meta()
    return run, fake


def job(fake: FakeRedis) -> dict[str, str]:
    return fake.h[p2vjob.Store.key("p2v-web1-abcd1234")]


def test_verdict_recorded_when_the_guest_booted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pyv2v.fleet.tasks.written", lambda meta: 123)
    run, fake = run_with_store()
    run.verifying()
    assert job(fake)["stage"] == "Verifying that the guest boots" == verifyboot.STAGE
    run.verdict = "Boot verification: booted: login after 41 s; network: 52:54:00:aa:bb:cc\n"
    run.end(None)
    j = job(fake)
    assert j["state"] == "done" and j["bytes"] == "123"
    assert j["verify"] == "Boot verification: booted: login after 41 s; network: 52:54:00:aa:bb:cc"


def test_guest_that_did_not_boot_fails_the_job_with_the_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pyv2v.fleet.tasks.written", lambda meta: 123)
    run, fake = run_with_store()
    run.verdict = "Boot verification: did not boot: no login prompt after 300 s"
    run.end(V2VError("the converted guest did not boot as expected: timeout"))
    j = job(fake)
    assert j["state"] == "failed" and j["stage"] == "boot check failed"
    assert j["error"] == j["verify"] == run.verdict and j["bytes"] == "123"


def test_no_boot_check_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pyv2v.fleet.tasks.written", lambda meta: 1)
    run, fake = run_with_store()
    run.end(V2VError("cannot open disk"))
    j = job(fake)
    assert j["state"] == "failed" and j["error"] == "cannot open disk" and "verify" not in j


@pytest.mark.parametrize("value,wanted", [("1", True), ("yes", True), ("", False), ("0", False)])
def test_verify_boot_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, wanted: bool
) -> None:
    seen: list[bool] = []

    def stop(ns: Any) -> Any:
        seen.append(ns.verify_boot)
        raise V2VError("stop here")

    monkeypatch.setenv(cli.VERIFY_BOOT_ENV, value)
    monkeypatch.setattr(cli, "make_plan", stop)
    with pytest.raises(V2VError, match="stop here"):
        cli.run(["-i", "disk", "/nonexistent.img", "-o", "null"])
    assert seen == [wanted]
