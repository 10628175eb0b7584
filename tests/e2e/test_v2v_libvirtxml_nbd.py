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
