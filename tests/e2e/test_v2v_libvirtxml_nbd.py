"""End to end: physical.xml with an NBD disk (nbdkit -r) → `v2v -i libvirtxml -o qemu -of qcow2`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from v2v_fixtures import Conversion

pytestmark = [pytest.mark.slow]


def test_conversion_succeeds(converted_nbd: Conversion) -> None:
    assert converted_nbd.rc == 0, converted_nbd.stderr[-2000:]
    assert "Pulling source disk 1/1 from nbd://localhost:" in converted_nbd.stdout


def test_source_unchanged(converted_nbd: Conversion) -> None:
    assert converted_nbd.sha_before == converted_nbd.sha_after


def test_outputs(converted_nbd: Conversion) -> None:
    out = converted_nbd.outdir
    assert sorted(os.listdir(out)) == ["p2vhost-sda", "p2vhost.sh"]
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json",
                                      str(out / "p2vhost-sda")], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    script = (out / "p2vhost.sh").read_text()
    assert "mac=52:54:00:5a:7e:01" in script  # the source NIC's MAC is kept
    assert "-smp 2" in script and "-m 1024" in script
    subprocess.run(["sh", "-n", str(out / "p2vhost.sh")], check=True)
    subprocess.run(["qemu-img", "check", str(out / "p2vhost-sda")], check=True)


@pytest.mark.boot
def test_generated_qemu_script_boots_the_guest(converted_nbd: Conversion, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Run NAME.sh as a user would (plus -display none) and watch its serial console."""
    import signal
    import time

    from pyv2v_harness import bootcheck

    log = tmp_path / "console.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(["sh", str(converted_nbd.outdir / "p2vhost.sh"), "-display",
                                 "none"], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        outcome = None
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text(errors="replace")
            outcome = bootcheck.classify(text, want_marker=True)
            if outcome:
                break
            time.sleep(2)
        text = log.read_text(errors="replace")
        assert outcome == "login", f"outcome {outcome}; console tail: {text[-1500:]}"
        assert any("eth0 UP" in m for m in bootcheck.markers(text)), text[-1500:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
