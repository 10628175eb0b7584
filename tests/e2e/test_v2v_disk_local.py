"""End to end: `v2v -i disk debian12-physical.img -o local`, then boot the result on virtio."""

from __future__ import annotations

import os
import subprocess

import pytest
from lxml import etree
from v2v_fixtures import Conversion, used_bytes

pytestmark = [pytest.mark.slow]

STAGES = ["Setting up the source", "Opening the source", "Inspecting the source",
          "Converting Debian", "Mapping filesystem data", "Closing the overlay",
          "Assigning disks to buses", "Copying disk 1/1", "Creating output metadata",
          "Finishing off"]


def test_conversion_succeeds_with_stage_messages(converted_local: Conversion) -> None:
    c = converted_local
    assert c.rc == 0, c.stderr[-2000:]
    lines = [ln for ln in c.stdout.splitlines() if ln.startswith("[")]
    pos = -1
    for stage in STAGES:
        idx = next((i for i, ln in enumerate(lines) if stage in ln), None)
        assert idx is not None and idx > pos, f"stage {stage!r} missing or out of order"
        pos = idx
    assert "Traceback" not in c.stderr


def test_source_never_written(converted_local: Conversion) -> None:
    assert converted_local.sha_before == converted_local.sha_after


def test_output_files_and_no_partials(converted_local: Conversion) -> None:
    names = sorted(os.listdir(converted_local.outdir))
    assert names == ["deb12-sda", "deb12.xml"]


def test_libvirt_xml_valid(converted_local: Conversion) -> None:
    xml = converted_local.outdir / "deb12.xml"
    subprocess.run(["virt-xml-validate", str(xml), "domain"], check=True)
    root = etree.parse(str(xml)).getroot()
    disk = root.find("./devices/disk[@device='disk']")
    assert disk is not None
    assert disk.find("target").get("bus") == "virtio" and disk.find("target").get("dev") == "vda"
    assert disk.find("source").get("file") == str(converted_local.outdir / "deb12-sda")
    assert root.find("./devices/interface/model").get("type") == "virtio"


def test_bytes_written_at_most_used_plus_10_percent(converted_local: Conversion) -> None:
    out = converted_local.outdir / "deb12-sda"
    written = os.stat(out).st_blocks * 512
    used = used_bytes(out)
    assert written <= used * 1.10, f"wrote {written} bytes for {used} bytes of data"
    assert os.stat(out).st_size == os.stat(converted_local.source).st_size


@pytest.mark.boot
def test_converted_guest_boots_on_virtio_with_network(converted_local: Conversion,
                                                      tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pyv2v_harness import bootcheck

    root = etree.parse(str(converted_local.outdir / "deb12.xml")).getroot()
    mac = root.find("./devices/interface/mac").get("address")
    res = bootcheck.boot(converted_local.outdir / "deb12-sda", bus="virtio-blk",
                         nic_model="virtio-net-pci", mac=mac, timeout=600,
                         console_log=tmp_path / "console.log")
    assert res.outcome == "login", f"see {res.console_log}"
    assert res.net_up, f"markers: {res.markers}; see {res.console_log}"
    assert any("eth0" in m for m in res.markers), res.markers
