"""`-i libvirt -ic URI NAME` against a real private libvirtd (pyv2v_harness.libvirtd).

One conversion proves the input and the UEFI and `-of qcow2` paths of `-o libvirt` together: a
shut-off domain on the cached debian12-uefi fixture (OVMF loader + NVRAM template) is converted
from that libvirtd into a qcow2 volume in a pool of the same libvirtd (test_v2v_libvirt_output.py
covers the default raw volume), then the converted domain is started through libvirt
and must reach a login prompt with its network up.  The source domain's NIC is on network
"default", which the private daemon does not have: the define succeeds with one warning.
Cheap refusals (no conversion): unknown domain, paused and running domains, unreachable URI,
no -ic at all, a remote TLS URI (qemu+ssh://: test_v2v_libvirt_ssh.py); --print-source resolves
a pool volume to its path.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree
from v2v_helpers import assert_one_line_error, run_v2v

from pyv2v import accel
from pyv2v_harness import libvirtd
from pyv2v_harness.fixtures.builder import sha256_file

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the private libvirtd runs as root")]

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
MAC = "52:54:00:1b:0c:42"


def domain_xml(name: str, disk: str, uefi: bool = False, disk_type: str = "file",
               fmt: str = "raw", nic: bool = True) -> str:
    loader = (f"<loader readonly='yes' type='pflash'>{OVMF_CODE}</loader>"
              f"<nvram template='{OVMF_VARS}'/>" if uefi else "")
    source = (f"<source file='{disk}'/>" if disk_type == "file" else
              f"<source pool='{disk.split('/')[0]}' volume='{disk.split('/')[1]}'/>")
    return (f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>1024</memory>"
            "<vcpu>2</vcpu>"
            f"<os><type arch='x86_64' machine='q35'>hvm</type>{loader}</os>"
            "<features><acpi/><apic/></features>"
            f"<devices><disk type='{disk_type}' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"{source}<target dev='sda' bus='sata'/></disk>"
            + (f"<interface type='network'><mac address='{MAC}'/><source network='default'/>"
               "<model type='e1000'/></interface>" if nic else "") + "</devices></domain>")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[libvirtd.Libvirtd]:
    d = libvirtd.start()
    d.add_dir_pool("converted", tmp_path_factory.mktemp("pool-converted"))
    yield d
    d.stop()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(p), "16M"], check=True)
    return p


def test_unknown_domain_refused(daemon: libvirtd.Libvirtd) -> None:
    res = run_v2v("-i", "libvirt", "-ic", daemon.uri, "nosuchguest", "--print-source",
                  timeout=120)
    print(assert_one_line_error(res, "no domain called nosuchguest on", daemon.uri))


def test_paused_and_running_domains_refused(daemon: libvirtd.Libvirtd, tiny: Path) -> None:
    import libvirt

    conn = daemon.connect()
    dom = conn.defineXML(domain_xml("busy", str(tiny), nic=False))
    try:
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        res = run_v2v("-i", "libvirt", "-ic", daemon.uri, "busy", "-o", "null", timeout=120)
        print(assert_one_line_error(res, "domain busy is paused", "must be shut down"))
        dom.resume()
        res = run_v2v("-i", "libvirt", "-ic", daemon.uri, "busy", "-o", "null", timeout=120)
        print(assert_one_line_error(res, "domain busy is running", "must be shut down"))
        assert dom.isActive()  # refused, not touched
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        conn.close()


def test_unreachable_uri_refused(tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-sock"
    res = run_v2v("-i", "libvirt", "-ic", uri, "guest", timeout=120)
    print(assert_one_line_error(res, "cannot connect to libvirt at", "no-such-sock"))


def test_default_uri_one_line() -> None:
    """No -ic: qemu:///system; reachable or not on this host, the answer is one line."""
    res = run_v2v("-i", "libvirt", "nosuchguest", timeout=120)
    print(assert_one_line_error(res, "qemu:///system"))


@pytest.mark.parametrize("uri,needle", [
    ("qemu+tls://host.invalid/system", "is a remote connection"),
    ("esx://127.0.0.1:1/?no_verify=1", "esx"),
])
def test_remote_and_vmware_uris_one_line(uri: str, needle: str) -> None:
    res = run_v2v("-i", "libvirt", "-ic", uri, "guest", "-o", "null", timeout=120)
    print(assert_one_line_error(res, needle))


def test_print_source_resolves_a_pool_volume(daemon: libvirtd.Libvirtd,
                                             tmp_path: Path) -> None:
    daemon.add_dir_pool("srcpool", tmp_path / "srcpool")
    conn = daemon.connect()
    try:
        pool = conn.storagePoolLookupByName("srcpool")
        pool.createXML("<volume><name>vol1.qcow2</name><capacity unit='M'>32</capacity>"
                       "<target><format type='qcow2'/></target></volume>", 0)
        dom = conn.defineXML(domain_xml("volguest", "srcpool/vol1.qcow2", disk_type="volume",
                                        fmt="qcow2"))
        res = run_v2v("-i", "libvirt", "-ic", daemon.uri, "volguest", "--print-source",
                      timeout=120)
        dom.undefine()
        pool.destroy()
        pool.undefine()
    finally:
        conn.close()
    assert res.returncode == 0, res.stderr
    assert f"{tmp_path}/srcpool/vol1.qcow2" in res.stdout, res.stdout
    assert "qcow2" in res.stdout and MAC in res.stdout, res.stdout


@dataclass
class UefiConversion:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    sha: tuple[str, str]
    source_xml: tuple[str, str]


@pytest.fixture(scope="module")
def converted(daemon: libvirtd.Libvirtd, debian12_uefi: Path) -> UefiConversion:
    conn = daemon.connect()
    try:
        conn.defineXML(domain_xml("deb12uefi", str(debian12_uefi), uefi=True))
        before_xml = conn.lookupByName("deb12uefi").XMLDesc(0)
    finally:
        conn.close()
    before = sha256_file(debian12_uefi)
    start = time.monotonic()
    res = run_v2v("-i", "libvirt", "-ic", daemon.uri, "deb12uefi", "-on", "deb12uefi-kvm",
                  "-o", "libvirt", "-oc", daemon.uri, "-os", "converted", "-of", "qcow2",
                  timeout=1800)
    took = time.monotonic() - start
    print(f"\nv2v -i libvirt -o libvirt: rc={res.returncode} in {took:.0f} s\n{res.stdout}\n"
          f"{res.stderr[-3000:]}")
    conn = daemon.connect()
    try:
        after_xml = conn.lookupByName("deb12uefi").XMLDesc(0)
    finally:
        conn.close()
    return UefiConversion(res.returncode, res.stdout, res.stderr, took,
                          (before, sha256_file(debian12_uefi)), (before_xml, after_xml))


@pytest.mark.slow
def test_uefi_domain_converted_into_pool(daemon: libvirtd.Libvirtd, debian12_uefi: Path,
                                         converted: UefiConversion) -> None:
    assert converted.rc == 0, converted.stderr[-2000:]
    assert converted.sha[0] == converted.sha[1], "the source disk was written"
    assert converted.source_xml[0] == converted.source_xml[1], "the source domain changed"
    assert daemon.domain_names() == ["deb12uefi", "deb12uefi-kvm"]
    warnings = [ln for ln in converted.stderr.splitlines() if ": warning: " in ln]
    assert any("has no network default" in w and "--network" in w for w in warnings), warnings
    conn = daemon.connect()
    try:
        pool = conn.storagePoolLookupByName("converted")
        pool.refresh(0)
        assert pool.listVolumes() == ["deb12uefi-kvm-sda"]
        vol = pool.storageVolLookupByName("deb12uefi-kvm-sda")
        vol_path = vol.path()
        vol_format = etree.fromstring(vol.XMLDesc(0).encode()).find("./target/format")
        root = etree.fromstring(conn.lookupByName("deb12uefi-kvm").XMLDesc(0).encode())
        assert not conn.lookupByName("deb12uefi").isActive()
    finally:
        conn.close()
    assert vol_format is not None and vol_format.get("type") == "qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", vol_path],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info, info
    assert info["format-specific"]["data"]["compat"] == "1.1", info  # as -o local writes it
    assert info["virtual-size"] == os.stat(debian12_uefi).st_size
    st = os.stat(vol_path)
    assert st.st_mode & 0o777 == 0o600
    assert info["actual-size"] < info["virtual-size"] / 2, "the volume was not written sparse"
    assert root.get("type") == ("kvm" if accel.detect().name == "kvm" else "qemu")
    loader = root.find("./os/loader")
    assert loader is not None and loader.text == OVMF_CODE and loader.get("type") == "pflash"
    nvram = root.find("./os/nvram")
    assert nvram is not None and nvram.get("template") == OVMF_VARS
    disk = root.find("./devices/disk[@device='disk']")
    assert disk is not None and disk.find("source").get("file") == vol_path
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("target").get("bus") == "virtio"
    nic = root.find("./devices/interface")
    assert nic is not None and nic.find("mac").get("address") == MAC
    assert nic.find("model").get("type") == "virtio"


@pytest.mark.slow
@pytest.mark.boot
def test_converted_uefi_domain_boots_through_libvirt(daemon: libvirtd.Libvirtd,
                                                     converted: UefiConversion,
                                                     tmp_path: Path) -> None:
    assert converted.rc == 0, converted.stderr[-2000:]
    res = daemon.boot("deb12uefi-kvm", tmp_path / "console.log", timeout=400)
    assert res.outcome == "login", f"{res}"
    assert res.net_up, f"markers: {res.markers}; see {res.console_log}"
