"""End to end: the debian12-uefi fixture (GPT, ESP, LVM root, UUIDs), without the \\EFI\\BOOT
fallback loader, converted (`-of qcow2 --compressed`) and booted under OVMF (fresh NVRAM) on
virtio-blk with its network up."""

from __future__ import annotations

import json
import subprocess

import pytest
from lxml import etree
from v2v_fixtures import Conversion

pytestmark = [pytest.mark.slow]


def test_conversion_succeeds(converted_uefi: Conversion) -> None:
    assert converted_uefi.rc == 0, converted_uefi.stderr[-2000:]
    assert converted_uefi.sha_before == converted_uefi.sha_after
    before, after = converted_uefi.fixture_sha  # type: ignore[attr-defined]
    assert before == after


def test_xml_declares_uefi(converted_uefi: Conversion) -> None:
    xml = converted_uefi.outdir / "deb12uefi.xml"
    subprocess.run(["virt-xml-validate", str(xml), "domain"], check=True)
    root = etree.parse(str(xml)).getroot()
    loader = root.find("./os/loader")
    assert loader is not None and loader.get("type") == "pflash" and "OVMF" in loader.text
    assert root.find("./devices/disk/driver").get("type") == "qcow2"


def test_compressed_qcow2_written(converted_uefi: Conversion) -> None:
    """--compressed (= -oo compressed): the data clusters are compressed, the file small."""
    disk = converted_uefi.outdir / "deb12uefi-sda"
    check = json.loads(subprocess.run(["qemu-img", "check", "-U", "--output=json", str(disk)],
                                      capture_output=True, text=True, check=True).stdout)
    assert check["format"] == "qcow2" and check.get("corruptions", 0) == 0, check
    allocated = check["allocated-clusters"]
    assert check["compressed-clusters"] > allocated * 0.9, check  # all but metadata-ish ones
    assert disk.stat().st_size < 0.8 * allocated * 65536, check


@pytest.mark.boot
def test_boots_under_ovmf_on_virtio(converted_uefi: Conversion, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pyv2v_harness import bootcheck

    root = etree.parse(str(converted_uefi.outdir / "deb12uefi.xml")).getroot()
    mac = root.find("./devices/interface/mac").get("address")
    res = bootcheck.boot(converted_uefi.outdir / "deb12uefi-sda", bus="virtio-blk",
                         firmware="uefi", fmt="qcow2", nic_model="virtio-net-pci", mac=mac,
                         timeout=600, console_log=tmp_path / "console.log")
    assert res.outcome == "login", f"see {res.console_log}"
    assert res.net_up, f"markers: {res.markers}; see {res.console_log}"
