"""-o libvirt without a daemon: the domain type/emulator choice and option checks.

The real daemon is exercised in tests/integration/test_v2v_libvirt_output.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import libvirt
import pytest

from pyv2v import accel
from pyv2v.errors import V2VError
from pyv2v.libvirt_xml import parse
from pyv2v.libvirt_xml.domain import DomainXML
from pyv2v.v2v.outputs import OutputOptions, get
from pyv2v.v2v.outputs.domain_xml import build_domain
from pyv2v.v2v.outputs.libvirt import LibvirtOutput, is_local, missing_networks
from pyv2v.v2v.types import (
    GuestCaps,
    Source,
    SourceDisk,
    TargetDisk,
    TargetMeta,
    TargetNicPlan,
)

DOMCAPS = """<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path>
<domain>{dtype}</domain><machine>pc-i440fx-7.2</machine><arch>x86_64</arch>
<os supported='yes'><loader supported='yes'>
<value>/usr/share/OVMF/OVMF_CODE_4M.fd</value></loader></os></domainCapabilities>"""


class FakeConn:
    """getDomainCapabilities as a host with TCG only (kvm raises) or with both."""

    def __init__(self, kvm: bool) -> None:
        self.kvm = kvm
        self.asked: list[str] = []

    def getDomainCapabilities(self, emulator: Any, arch: str, machine: str, dtype: str,
                              flags: int) -> str:
        self.asked.append(dtype)
        if dtype == "kvm" and not self.kvm:
            raise libvirt.libvirtError("KVM is not supported on this host")
        return DOMCAPS.format(dtype=dtype)


def meta() -> TargetMeta:
    src = Source(name="g", hypervisor="kvm", memory=1 << 30, vcpus=1,
                 disks=(SourceDisk(0, "/src/0", "raw"),))
    caps = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga", machine="pc",
                     arch="x86_64", firmware="bios", target_devs=("vda",))
    return TargetMeta("g", src, None, caps, (TargetDisk("/pool/g-sda", "raw", "vda", 1),), ())


@pytest.mark.parametrize("uri,local", [("qemu:///system", True), ("qemu+unix:///system?socket=/x",
                                                                   True),
                                       ("qemu+ssh://root@kvmhost/system", False),
                                       ("qemu+tcp://localhost/system", True)])
def test_is_local(uri: str, local: bool) -> None:
    assert is_local(uri) is local


@pytest.mark.parametrize("uri,probe,kvm_offered,expect,asked", [
    # Locally, KVM that does not really work (accel says tcg) is never asked for.
    ("qemu:///system", "tcg", True, "qemu", ["qemu"]),
    ("qemu:///system", "kvm", True, "kvm", ["kvm"]),
    ("qemu:///system", "kvm", False, "qemu", ["kvm", "qemu"]),
    # A remote host is not probed from here: its connection decides.
    ("qemu+ssh://h/system", "tcg", True, "kvm", ["kvm"]),
    ("qemu+ssh://h/system", "tcg", False, "qemu", ["kvm", "qemu"]),
])
def test_domain_type_is_what_the_host_runs(monkeypatch: pytest.MonkeyPatch, uri: str, probe: str,
                                           kvm_offered: bool, expect: str,
                                           asked: list[str]) -> None:
    monkeypatch.setattr(accel, "detect", lambda: accel.Accel(probe, "test"))
    out = LibvirtOutput(OutputOptions(conn=uri))
    conn = FakeConn(kvm_offered)
    dtype, emulator, loaders = out.host_caps(conn, meta())
    assert (dtype, conn.asked) == (expect, asked)
    assert emulator == "/usr/bin/qemu-system-x86_64"
    assert loaders == ["/usr/share/OVMF/OVMF_CODE_4M.fd"]


def test_domain_xml_type_and_emulator_validate(tmp_path: Path) -> None:
    xml = build_domain(meta(), domain_type="qemu", emulator="/usr/bin/qemu-system-x86_64")
    dom = DomainXML(parse(xml))
    assert dom.type == "qemu" and dom.devices.emulator == "/usr/bin/qemu-system-x86_64"
    assert dom.node.find("./devices")[0].tag == "emulator"  # libvirt's order
    p = tmp_path / "d.xml"
    p.write_text(xml)
    res = subprocess.run(["virt-xml-validate", str(p), "domain"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr + xml


def test_options_checked_before_any_work() -> None:
    with pytest.raises(V2VError, match="--overwrite is not supported"):
        get("libvirt", OutputOptions(overwrite=True)).precheck()
    with pytest.raises(V2VError, match="unknown -oo option"):
        get("libvirt", OutputOptions(options={"compressed": ""})).precheck()
    get("libvirt", OutputOptions(format="qcow2")).precheck()
    assert get("libvirt", OutputOptions()).uri == "qemu:///system"  # type: ignore[attr-defined]


class NetConn:
    """networkLookupByName on a host that has only the networks given."""

    def __init__(self, *networks: str) -> None:
        self.networks = networks

    def networkLookupByName(self, name: str) -> object:
        if name not in self.networks:
            raise libvirt.libvirtError(f"Network not found: no network with matching name "
                                       f"'{name}'")
        return object()


def test_missing_network_or_bridge_is_one_warning_each() -> None:
    nics = (TargetNicPlan("52:54:00:00:00:01", None, "default"),
            TargetNicPlan("52:54:00:00:00:02", None, "lan"),
            TargetNicPlan("52:54:00:00:00:03", None, "nosuchbr0", vnet_type="bridge"))
    m = meta()
    m = TargetMeta(m.name, m.source, m.inspect, m.caps, m.disks, nics)
    warnings = missing_networks(NetConn("lan"), m, "qemu:///system")
    assert len(warnings) == 2, warnings
    assert "has no network default for NIC 52:54:00:00:00:01" in warnings[0]
    assert "has no bridge nosuchbr0 for NIC 52:54:00:00:00:03" in warnings[1]
    assert all("--network IN:OUT" in w and "\n" not in w for w in warnings)
    assert missing_networks(NetConn("default", "lan"), m, "qemu+ssh://h/system") == []
