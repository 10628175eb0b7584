"""End to end: the debian12-uefi fixture (GPT, ESP, LVM root, UUIDs), without the \\EFI\\BOOT
fallback loader, converted and booted under OVMF (fresh NVRAM) on virtio-blk with its network up."""

from __future__ import annotations

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
