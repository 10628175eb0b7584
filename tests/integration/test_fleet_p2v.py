"""p2v conversions in the fleet's status view, with the real p2v over the loopback sshd, our
real v2v as the conversion server's virt-v2v, and a real redis-server.

The server's sessions get the fleet's broker the way the worker does ($PYV2V_FLEET_BROKER, here
through sshd's SetEnv).  The "physical" disk is read slowly (ThrottledDisk), so the run is
watched while v2v pulls it: it is listed as a p2v job (source, guest, server, the pipeline's
stage) next to a submitted v2v job in `status`, `status --json` and `report`; `retry` refuses it
with one line; `cancel` stops it on the server (p2v reports the failure, nothing is left).
A broker that is down costs one warning line and changes nothing else (the same bad input gives
the same error and exit status with and without it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from p2v_real import P2V, ThrottledDisk, listing, pulled_bytes, remote_procs, wait_until
from redis_fixtures import Fleet, fleet, free_port  # noqa: F401 - the fixture

from pyv2v import accel
from pyv2v_harness import loopback

pytestmark = [pytest.mark.slow]


def test_p2v_run_listed_and_cancelled(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "source.img"
    source.write_bytes(os.urandom(32 << 20))
    disk = ThrottledDisk(source, tmp_path / "mnt", "4M")
    pull = tmp_path / "v2v-tmp"
    pull.mkdir(mode=0o700)
    env = {
        "LIBGUESTFS_BACKEND": "direct",
        **accel.libguestfs_env(),
        "PYV2V_TMPDIR": str(pull),
        "PYV2V_FLEET_BROKER": fleet.url,
    }
    srv = loopback.start(
        path=[str(loopback.v2v_bin_dir(tmp_path / "bin"))] + loopback.DEFAULT_PATH, env=env
    )
    out = tmp_path / "out"
    out.mkdir()
    run = None
    try:
        plan = tmp_path / "plan.yaml"  # a submitted job (no worker: it stays queued)
        plan.write_text(
            json.dumps(
                [
                    {
                        "name": "web9",
                        "args": ["-i", "disk", str(source), "-o", "local", "-os", str(out)],
                    }
                ]
            )
        )
        assert fleet.cli("submit", str(plan)).returncode == 0
        run = P2V.start(srv, disk.path, out, "physrv1")
        wait_until(
            lambda: pulled_bytes(pull) > 0 or run.proc.poll() is not None,
            300,
            "the server to pull the disk",
        )
        assert run.proc.poll() is None, run.out
        rdir = run.remote_dir()
        jid = f"p2v-physrv1-{rdir.name[-8:]}"
        job = fleet.job(jid)
        assert job["kind"] == "p2v" and job["state"] == "running", job
        assert job["source"] == "127.0.0.1" and job["guest"] == "physrv1"
        assert job["server"] == socket.gethostname() and job["workdir"] == str(rdir)
        # the pipeline's current stage: the pull, or its progress line once one was reported
        assert job["stage"].startswith(("Pulling ", "Pulled ")), job

        rows = {r["job"]: r for r in json.loads(fleet.cli("status", "--json").stdout)}
        assert rows[jid]["kind"] == "p2v" and rows[jid]["state"] == "running"
        assert rows[jid]["source"] == "127.0.0.1" and rows[jid]["guest"] == "physrv1"
        assert rows["web9"]["kind"] == "v2v" and rows["web9"]["state"] == "queued"
        table = fleet.cli("status").stdout
        line = next(ln for ln in table.splitlines() if ln.startswith(jid))
        assert " p2v " in line and "(from 127.0.0.1)" in line
        assert " Pulling " in line or " Pulled " in line, line
        assert "running 1" in table and "queued 1" in table
        assert jid in fleet.cli("report").stdout
        r = fleet.cli("retry", jid)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "p2v client" in r.stderr

        r = fleet.cli("cancel", jid)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: run.proc.poll() is not None, 120, "p2v to see the cancel")
        assert run.finish() != 0
        wait_until(lambda: not remote_procs(srv), 60, "the server's conversion to end")
        log = (rdir / "virt-v2v-conversion-log.txt").read_text(errors="replace")
        assert "cancelled from v2v-fleet" in log and "cancelled by SIGTERM" in log, log[-2000:]
        job = fleet.job(jid)
        assert job["state"] == "cancelled" and job["finished"], job
        assert listing(out) == [] and not list(pull.rglob("*"))
        assert json.loads(fleet.cli("report", "--json").stdout)[-1]["outcome"] == "cancelled"
    finally:
        if run is not None and run.proc.poll() is None:
            run.proc.kill()
            run.finish()
        srv.stop()
        disk.close()


def v2v_in_p2v_workdir(tmp: Path, broker: str | None) -> subprocess.CompletedProcess[str]:
    """Our v2v as p2v's wrapper runs it, on a physical.xml whose disk does not exist."""
    wd = tmp / ("virt-p2v-20261126-" + ("abcd1234" if broker else "abcd5678"))
    wd.mkdir(parents=True)
    (wd / "name").write_text("badhost\n")
    (wd / "physical.xml").write_text(
        "<domain type='physical'><name>badhost</name><memory unit='GiB'>1</memory><vcpu>1"
        "</vcpu><os><type arch='x86_64'>hvm</type></os><devices><disk type='file' "
        f"device='disk'><source file='{tmp.parent}/missing.img'/><target dev='sda'/></disk>"
        "</devices></domain>"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYV2V_FLEET_BROKER"}
    if broker:
        env["PYV2V_FLEET_BROKER"] = broker
    v2v = str(Path(sys.executable).with_name("v2v"))
    return subprocess.run(
        [v2v, "-i", "libvirtxml", "-o", "null", "--root", "first", "physical.xml"],
        cwd=wd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_p2v_run_failure_recorded_and_broker_down_is_one_warning(
    fleet: Fleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    plain = v2v_in_p2v_workdir(tmp_path / "a", None)
    assert plain.returncode != 0 and "missing.img" in plain.stderr
    error = plain.stderr.strip().splitlines()[-1]

    down = v2v_in_p2v_workdir(tmp_path / "b", f"redis://:secret@127.0.0.1:{free_port()}/0")
    assert down.returncode == plain.returncode
    warnings = [ln for ln in down.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "fleet broker redis://***@127.0.0.1" in warnings[0], down.stderr
    assert "secret" not in down.stderr and "Traceback" not in down.stderr
    assert down.stderr.strip().splitlines()[-1] == error

    up = v2v_in_p2v_workdir(tmp_path / "c", fleet.url)
    assert up.returncode == plain.returncode and up.stderr.strip() == error
    job = fleet.job("p2v-badhost-abcd1234")
    assert job["kind"] == "p2v" and job["state"] == "failed" and job["source"] == "unknown"
    assert "missing.img" in job["error"] and "\n" not in job["error"]


def test_p2v_run_that_stopped_reporting_is_failed(fleet: Fleet) -> None:  # noqa: F811
    """A p2v job whose v2v no longer keeps its lease (killed -9, server down) is not shown
    running for ever: status records it failed with a line saying so."""
    from pyv2v.fleet.p2vjob import TolerantStore

    store = TolerantStore(fleet.url)
    fields = {
        "id": "p2v-gone-abcd1234",
        "kind": "p2v",
        "state": "running",
        "server": "srv9",
        "pid": "4242",
        "source": "10.0.0.9",
        "guest": "gone",
        "started": "1",
    }
    assert store.register("p2v-gone-abcd1234", fields)
    rows = {r["job"]: r for r in json.loads(fleet.cli("status", "--json").stdout)}
    assert rows["p2v-gone-abcd1234"]["state"] == "running"  # its lease is alive
    store.r.delete(store.lease_key("p2v-gone-abcd1234"))  # as if it expired
    rows = {r["job"]: r for r in json.loads(fleet.cli("status", "--json").stdout)}
    row = rows["p2v-gone-abcd1234"]
    assert row["state"] == "failed" and "no word from this p2v conversion" in row["error"]
    assert "srv9 (pid 4242)" in row["error"]
