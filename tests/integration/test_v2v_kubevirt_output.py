"""`-o kubevirt` for real: debian12-physical converted to a disk + VirtualMachine manifest, whose
disk then boots under qemu (virtio, the manifest's MAC) to a login prompt with its network up.
The manifest's shape is covered by the golden tests (tests/unit/test_v2v_kubevirt.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from v2v_fixtures import Conversion, convert

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def converted_kubevirt(debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory
                       ) -> Conversion:
    out = tmp_path_factory.mktemp("v2v-kubevirt")
    return convert(debian12_physical, out, "-i", "disk", str(debian12_physical), "-on",
                   "deb12kv", "-o", "kubevirt", "-os", str(out))


def test_kubevirt_writes_disk_and_manifest(converted_kubevirt: Conversion) -> None:
    c = converted_kubevirt
    assert c.rc == 0, c.stderr[-2000:]
    assert c.sha_before == c.sha_after
    assert sorted(os.listdir(c.outdir)) == ["deb12kv-sda", "deb12kv.yaml"]
    doc = yaml.safe_load((c.outdir / "deb12kv.yaml").read_text())
    assert doc["apiVersion"] == "kubevirt.io/v1" and doc["kind"] == "VirtualMachine"
    spec = doc["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"hostDisk": {"path": str(c.outdir / "deb12kv-sda"),
                                             "type": "Disk"}, "name": "disk-0"}]
    assert spec["domain"]["firmware"]["bootloader"] == {"bios": {}}
    assert doc["metadata"]["labels"]["libguestfs.org/osinfo"] == "debian12"
    assert len(spec["domain"]["devices"]["interfaces"]) == 1


@pytest.mark.boot
def test_kubevirt_disk_boots_with_network(converted_kubevirt: Conversion,
                                          tmp_path: Path) -> None:
    from pyv2v_harness import bootcheck

    c = converted_kubevirt
    assert c.rc == 0, c.stderr[-2000:]
    spec = yaml.safe_load((c.outdir / "deb12kv.yaml").read_text())["spec"]["template"]["spec"]
    mac = spec["domain"]["devices"]["interfaces"][0]["macAddress"]
    res = bootcheck.boot(spec["volumes"][0]["hostDisk"]["path"], bus="virtio-blk",
                         nic_model="virtio-net-pci", mac=mac, timeout=600,
                         console_log=tmp_path / "console.log")
    assert res.outcome == "login", f"see {res.console_log}"
    assert res.net_up, f"markers: {res.markers}; see {res.console_log}"
