"""End to end: our p2v → loopback sshd → our v2v, then the converted guest boots on virtio with
its network up.  The same path as `make demo`, with a harder guest: debian12-netnames configures
its NIC as `ens33` (systemd-networkd, static address, predictable names — no net.ifnames=0),
while the p2v live system (this host) calls the card something else (eth0 here): the converted
guest's virtio NIC would be ens3-ish, so its network is up only if v2v pinned the guest's own
name, not physical.xml's live name, to the NIC's MAC.
The server runs with a fleet broker configured (a private redis-server), so the same run also
shows the p2v registration in the fleet's status (fleet/p2vjob.py): sampled while it runs.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree
from redis_fixtures import start_redis
from v2v_fixtures import sha256

from pyv2v.v2v import verifyboot
from pyv2v.v2v.types import GuestCaps, TargetDisk
from pyv2v_harness import bootcheck, demo, loopback

pytestmark = [pytest.mark.slow]

SECTION4 = ["name", "physical.xml", "virt-v2v-wrapper.sh", "status", "environment", "time",
            "v2v-version", "virt-v2v-conversion-log.txt", "dmesg", "lscpu", "p2v-version"]


@dataclass
class P2VRun:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    outdir: Path
    sha_before: str
    sha_after: str
    remote: dict[str, str] = field(default_factory=dict)
    wrapper_mode: int = 0
    fleet_job: dict[str, str] = field(default_factory=dict)       # the run's fleet job, at end
    fleet_seen: list[tuple[str, str, str]] = field(default_factory=list)  # (state, stage, %)


def sample_fleet(url: str, seen: list[tuple[str, str, str]], stop: threading.Event) -> None:
    """Record every change of the p2v job's (state, stage, progress) while the run goes on, and
    once more after `stop` (p2v can exit a moment before the server records the end)."""
    from pyv2v.fleet.store import Store

    store = Store(url)
    while True:
        last = stop.wait(0.3)
        for j in store.all():
            if j.get("kind") == "p2v":
                now = (j["state"], j["stage"], j["progress"])
                if not seen or seen[-1] != now:
                    seen.append(now)
        if last:
            return


@pytest.fixture(scope="module")
def p2v_run(debian12_netnames: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[P2VRun]:
    source = debian12_netnames
    out = tmp_path_factory.mktemp("p2v-out")
    before = sha256(source)
    redis, port = start_redis(tmp_path_factory.mktemp("redis"))
    url = f"redis://127.0.0.1:{port}/0"
    srv = loopback.start_conversion_server(tmp_path_factory.mktemp("p2v-bin"),
                                           env={"PYV2V_FLEET_BROKER": url})
    seen: list[tuple[str, str, str]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_fleet, args=(url, seen, stop), daemon=True)
    sampler.start()
    try:
        start = time.monotonic()
        res = subprocess.run(demo.p2v_argv(srv, source, out, "p2vtest"),
                             capture_output=True, text=True, timeout=1800)
        took = time.monotonic() - start
        from pyv2v.fleet.store import Store

        deadline = time.monotonic() + 15  # the server records the end just after p2v exits
        while time.monotonic() < deadline and not any(
                j.get("kind") == "p2v" and j.get("state") in ("done", "failed")
                for j in Store(url).all()):
            time.sleep(0.2)
        stop.set()
        sampler.join(10)
        print(f"\np2v: rc={res.returncode} in {took:.0f} s\n{res.stdout}\n{res.stderr[-3000:]}")
        run = P2VRun(res.returncode, res.stdout, res.stderr, took, out, before,
                     sha256(source))
        rdirs = [ln.split()[-1] for ln in res.stdout.splitlines()
                 if "remote log directory:" in ln]
        if rdirs and os.path.isdir(rdirs[-1]):
            rdir = Path(rdirs[-1])
            run.remote = {p.name: p.read_text(errors="replace") for p in rdir.iterdir()
                          if p.is_file()}
            run.wrapper_mode = (rdir / "virt-v2v-wrapper.sh").stat().st_mode & 0o777
        run.fleet_job = next((j for j in Store(url).all() if j.get("kind") == "p2v"), {})
        run.fleet_seen = seen
        yield run
    finally:
        stop.set()
        srv.stop()
        redis.terminate()
        redis.wait(10)


def test_p2v_conversion_succeeds_with_live_stage_lines(p2v_run: P2VRun) -> None:
    assert p2v_run.rc == 0, p2v_run.stderr[-2000:]
    for stage in ("Pulling source disk 1/1 from nbd+unix:///?socket=/tmp/virt-p2v-",
                  "Inspecting the source",
                  "Converting Debian", "Copying disk 1/1", "Finishing off"):
        assert stage in p2v_run.stdout, stage
    assert "\x1b[" not in p2v_run.stdout  # no colours when not on a terminal


def test_p2v_run_recorded_in_fleet_status(p2v_run: P2VRun) -> None:
    """A p2v job in the fleet's status: running through the pipeline's stages, then done."""
    job = p2v_run.fleet_job
    assert job.get("kind") == "p2v" and job["guest"] == "p2vtest", (job, p2v_run.fleet_seen)
    assert job["source"] == "127.0.0.1" and job["id"].startswith("p2v-p2vtest-")
    assert job["state"] == "done" and job["progress"] == "100" and job["error"] == ""
    assert int(job["bytes"]) > 100 * 1024**2
    stages = [stage for state, stage, _ in p2v_run.fleet_seen if state == "running"]
    assert "Inspecting the source" in stages and len(set(stages)) >= 3, p2v_run.fleet_seen
    assert p2v_run.fleet_seen[-1][0] == "done"


def test_source_disk_never_written(p2v_run: P2VRun) -> None:
    assert p2v_run.sha_before == p2v_run.sha_after


def test_remote_work_dir_has_every_protocol_file(p2v_run: P2VRun) -> None:
    missing = [f for f in SECTION4 if f not in p2v_run.remote]
    assert not missing, f"missing in the remote dir: {missing}"
    r = p2v_run.remote
    assert r["status"].strip() == "0" and r["name"].strip() == "p2vtest"
    assert "pyv2v" in r["v2v-version"] and p2v_run.wrapper_mode == 0o700  # owner-only (issue 10)
    assert "<domain" in r["physical.xml"] and 'protocol="nbd"' in r["physical.xml"]
    # our v2v says nbd-unix-socket: the disk came through a private socket, not a TCP port
    assert 'transport="unix"' in r["physical.xml"] and ' port="' not in r["physical.xml"]
    assert "Copying disk 1/1" in r["virt-v2v-conversion-log.txt"]


def live_nic_names(physical_xml: str) -> list[str]:
    root = etree.fromstring(physical_xml.encode())
    return [t.get("dev", "") for t in root.findall("./devices/interface/target")]


def test_guest_configured_name_pinned_not_the_live_name(p2v_run: P2VRun) -> None:
    live = live_nic_names(p2v_run.remote["physical.xml"])
    assert live and "ens33" not in live, live       # the premise: the names really differ
    mac = demo.first_mac(p2v_run.outdir / "p2vtest.xml")
    log = p2v_run.stdout + p2v_run.remote.get("virt-v2v-conversion-log.txt", "")
    assert f"Pinned network interface names: ens33={mac}" in log
    assert f"{live[0]}={mac}" not in log


@pytest.mark.boot
def test_converted_machine_boots_on_virtio_with_network(p2v_run: P2VRun, tmp_path: Path) -> None:
    disk, xml = p2v_run.outdir / "p2vtest-sda", p2v_run.outdir / "p2vtest.xml"
    subprocess.run(["virt-xml-validate", str(xml), "domain"], check=True)
    res = bootcheck.boot(disk, bus="virtio-blk", nic_model="virtio-net-pci",
                         mac=demo.first_mac(xml), timeout=600,
                         console_log=tmp_path / "console.log")
    assert res.outcome == "login", f"see {res.console_log}"
    # networkd's static address on the guest's own name, on a NIC the kernel calls ens3/enp0s3.
    assert res.up_interfaces.get("ens33") == "10.0.2.15", res.markers


@pytest.mark.boot
def test_verify_boot_reports_a_nic_whose_pin_does_not_apply(p2v_run: P2VRun) -> None:
    """The network broken on purpose: the converted disk booted with another MAC, so the pin
    does not apply, the kernel's own name (ens3…) is not ens33 and networkd leaves the NIC
    down — --verify-boot's judge must say so (and this shows the rename is real)."""
    caps = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga", machine="pc",
                     arch="x86_64", firmware="bios")
    disk = TargetDisk(str(p2v_run.outdir / "p2vtest-sda"), "raw", "vda", 0)
    v = verifyboot.verify((disk,), caps, ["52:54:00:bb:bb:01"], net_grace=20)
    print(v.line())
    assert not v.ok and v.outcome == "login" and not v.addresses, v.line()
    assert "no NIC configured within 20 s of the login prompt" in v.line()
