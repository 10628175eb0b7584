"""`-o libvirt` into a real, private libvirtd (pyv2v_harness.libvirtd) with a directory pool.

The conversion of debian12-physical runs with no -o at all (libvirt is the default output, pool
"default"), then the defined domain is started through libvirt and must reach a login prompt
with its network up.  Bad input (missing pool, a taken name, no daemon, a read-only or full pool
directory) is refused at setup with one line, before any conversion work; a run that fails later
(a blank disk: no OS found) deletes the volumes it created.
Each test checks that nothing is left defined or allocated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree
from v2v_helpers import V2V, assert_one_line_error, run_v2v

from pyv2v import accel
from pyv2v_harness import libvirtd
from pyv2v_harness.fixtures.builder import sha256_file

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the private libvirtd runs as root")]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[libvirtd.Libvirtd]:
    d = libvirtd.start()
    d.add_dir_pool("default", tmp_path_factory.mktemp("pool-default"))
    yield d
    d.stop()


def pool_volumes(d: libvirtd.Libvirtd, pool: str = "default") -> list[str]:
    conn = d.connect()
    try:
        p = conn.storagePoolLookupByName(pool)
        p.refresh(0)
        return sorted(p.listVolumes())
    finally:
        conn.close()


def pool_dir(d: libvirtd.Libvirtd, pool: str = "default") -> Path:
    conn = d.connect()
    try:
        xml = conn.storagePoolLookupByName(pool).XMLDesc(0)
    finally:
        conn.close()
    return Path(etree.fromstring(xml.encode()).findtext("./target/path") or "")


@pytest.fixture
def blank(tmp_path: Path) -> Path:
    """A 64 MiB disk with no OS: enough to reach the output's setup."""
    p = tmp_path / "blank.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(p), "64M"], check=True)
    return p


def assert_nothing_left(d: libvirtd.Libvirtd, pool: str = "default",
                        domains: tuple[str, ...] = ()) -> None:
    assert d.domain_names() == sorted(domains)
    assert [v for v in pool_volumes(d, pool) if not v.startswith("filler")] == []
    assert [n for n in os.listdir(pool_dir(d, pool)) if not n.startswith("filler")] == []


def test_missing_pool_refused(daemon: libvirtd.Libvirtd, blank: Path) -> None:
    res = run_v2v("-i", "disk", str(blank), "-oc", daemon.uri, "-os", "nosuch", timeout=120)
    print(assert_one_line_error(res, "storage pool nosuch does not exist"))
    assert_nothing_left(daemon)


def test_taken_name_refused_and_kept(daemon: libvirtd.Libvirtd, blank: Path) -> None:
    conn = daemon.connect()
    dom = conn.defineXML("<domain type='qemu'><name>taken</name><memory>65536</memory>"
                         "<os><type arch='x86_64'>hvm</type></os></domain>")
    conn.close()
    try:
        res = run_v2v("-i", "disk", str(blank), "-o", "libvirt", "-oc", daemon.uri,
                      "-on", "taken", timeout=120)
        print(assert_one_line_error(res, "domain called taken already exists", "-on"))
        assert_nothing_left(daemon, domains=("taken",))
    finally:
        dom.undefine()


def test_taken_volume_refused_and_kept(daemon: libvirtd.Libvirtd, blank: Path) -> None:
    """A volume vx-sda already in the pool: -on vx is refused at setup, the volume untouched."""
    conn = daemon.connect()
    try:
        vol = conn.storagePoolLookupByName("default").createXML(
            "<volume><name>vx-sda</name><capacity unit='KiB'>64</capacity>"
            "<target><format type='raw'/></target></volume>", 0)
    finally:
        conn.close()
    path = pool_dir(daemon) / "vx-sda"
    try:
        with open(path, "r+b") as f:
            f.write(b"someone else's volume\n")
        before = (sha256_file(path), os.stat(path).st_size)
        res = run_v2v("-i", "disk", str(blank), "-oc", daemon.uri, "-on", "vx", timeout=120)
        print(assert_one_line_error(res, "volume vx-sda already exists in pool default", "-on"))
        assert "Opening the source" not in res.stdout  # refused before any conversion work
        assert (sha256_file(path), os.stat(path).st_size) == before
        assert pool_volumes(daemon) == ["vx-sda"]
        assert sorted(os.listdir(pool_dir(daemon))) == ["vx-sda"]
        assert daemon.domain_names() == []
    finally:
        vol.delete(0)
    assert_nothing_left(daemon)


def test_unreachable_uri_refused(blank: Path, tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-libvirt-sock"
    res = run_v2v("-i", "disk", str(blank), "-oc", uri, timeout=120)
    print(assert_one_line_error(res, "cannot connect to libvirt at", "no-such-libvirt-sock"))


def test_overwrite_refused(daemon: libvirtd.Libvirtd, blank: Path) -> None:
    res = run_v2v("-i", "disk", str(blank), "-oc", daemon.uri, "--overwrite", timeout=120)
    assert_one_line_error(res, "--overwrite is not supported")
    assert_nothing_left(daemon)


@pytest.fixture(scope="module")
def odd_pools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[libvirtd.Libvirtd]:
    """A daemon (started after the mounts, so it sees them) with pools on a read-only tmpfs
    ("ro") and on a full 1 MiB tmpfs ("full")."""
    base = tmp_path_factory.mktemp("odd-pools")
    ro, full = base / "ro", base / "full"
    ro.mkdir()
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16m,mode=0711", "tmpfs", str(ro)],
                   check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0711", "tmpfs", str(full)],
                   check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={full}/filler", "bs=64k"],
                       capture_output=True, check=False)
        d = libvirtd.start()
        try:
            d.add_dir_pool("ro", ro)
            d.add_dir_pool("full", full)
            yield d
        finally:
            d.stop()
    finally:
        subprocess.run(["umount", str(ro)], check=False)
        subprocess.run(["umount", str(full)], check=False)


@pytest.mark.parametrize("pool,needle", [
    ("ro", "cannot create volume ro-guest-sda in pool ro"),
    ("full", "storage pool full is full"),
])
def test_unwritable_pool_refused_before_converting(odd_pools: libvirtd.Libvirtd, blank: Path,
                                                   pool: str, needle: str) -> None:
    start = time.monotonic()
    res = run_v2v("-i", "disk", str(blank), "-oc", odd_pools.uri, "-os", pool,
                  "-on", f"{pool}-guest", timeout=120)
    print(assert_one_line_error(res, needle))
    assert "Opening the source" not in res.stdout  # refused before any conversion work
    assert time.monotonic() - start < 20
    assert_nothing_left(odd_pools, pool)


@pytest.mark.slow
def test_failure_after_setup_deletes_the_volumes(daemon: libvirtd.Libvirtd, blank: Path) -> None:
    """The volume exists from setup on; inspection then finds no OS: the volume must go."""
    res = run_v2v("-i", "disk", str(blank), "-oc", daemon.uri, "-on", "blank", timeout=600)
    assert_one_line_error(res, "no operating system was found")
    assert_nothing_left(daemon)


@pytest.mark.slow
def test_cancel_mid_conversion_leaves_nothing(daemon: libvirtd.Libvirtd,
                                              debian12_physical: Path) -> None:
    """SIGTERM while converting: exit 143, the volume made at setup deleted, nothing defined."""
    proc = subprocess.Popen([V2V, "-i", "disk", str(debian12_physical), "-on", "cancelled",
                             "-oc", daemon.uri], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = ""
    for line in proc.stdout:
        seen += line
        if "Converting" in line:
            assert pool_volumes(daemon) == ["cancelled-sda"]  # allocated from setup on
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, seen + out + err
    assert "Traceback" not in err
    assert_nothing_left(daemon)


@dataclass
class LibvirtConversion:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    sha: tuple[str, str]


@pytest.fixture(scope="module")
def converted(daemon: libvirtd.Libvirtd, debian12_physical: Path) -> LibvirtConversion:
    before = sha256_file(debian12_physical)
    start = time.monotonic()
    # No -o: libvirt is the default output; no -os: the pool called "default".
    res = run_v2v("-i", "disk", str(debian12_physical), "-on", "deb12lv", "-oc", daemon.uri,
                  timeout=1800)
    took = time.monotonic() - start
    print(f"\nv2v -o libvirt: rc={res.returncode} in {took:.0f} s\n{res.stdout}\n"
          f"{res.stderr[-3000:]}")
    return LibvirtConversion(res.returncode, res.stdout, res.stderr, took,
                             (before, sha256_file(debian12_physical)))


@pytest.mark.slow
def test_default_output_defines_domain_and_volume(daemon: libvirtd.Libvirtd,
                                                  converted: LibvirtConversion) -> None:
    assert converted.rc == 0, converted.stderr[-2000:]
    assert converted.sha[0] == converted.sha[1]
    assert "Setting up the destination: -o libvirt" in converted.stdout
    assert daemon.domain_names() == ["deb12lv"]
    assert pool_volumes(daemon) == ["deb12lv-sda"]
    vol = pool_dir(daemon) / "deb12lv-sda"
    st = os.stat(vol)
    assert st.st_mode & 0o777 == 0o600
    assert st.st_blocks * 512 < st.st_size / 2, "the volume was not written sparse"
    conn = daemon.connect()
    try:
        root = etree.fromstring(conn.lookupByName("deb12lv").XMLDesc(0).encode())
    finally:
        conn.close()
    # This host's KVM does not run a stock kernel (pyv2v.accel): the domain must be TCG.
    assert root.get("type") == ("kvm" if accel.detect().name == "kvm" else "qemu")
    assert root.findtext("./devices/emulator") == "/usr/bin/qemu-system-x86_64"
    disk = root.find("./devices/disk[@device='disk']")
    assert disk is not None
    assert disk.find("source").get("file") == str(vol)
    assert disk.find("target").get("dev") == "vda" and disk.find("driver").get("type") == "raw"
    nic = root.find("./devices/interface")
    assert nic is not None and nic.get("type") == "network"
    assert nic.find("source").get("network") == "default"


@pytest.mark.slow
@pytest.mark.boot
def test_domain_boots_through_libvirt_with_network(daemon: libvirtd.Libvirtd,
                                                   converted: LibvirtConversion,
                                                   tmp_path: Path) -> None:
    assert converted.rc == 0, converted.stderr[-2000:]
    res = daemon.boot("deb12lv", tmp_path / "console.log", timeout=300)
    assert res.outcome == "login", f"{res}"
    assert res.net_up, f"markers: {res.markers}; see {res.console_log}"



@pytest.mark.parametrize("preallocate", [False, True])
def test_qcow2_volume_is_compat_1_1_and_preallocated_on_request(daemon: libvirtd.Libvirtd,
                                                                preallocate: bool) -> None:
    """`-of qcow2` (`-oa preallocated`) volumes, made by the real libvirtd's storage driver:
    qcow2 1.1 as `-o local` writes it (libvirt's own default is 0.10), metadata preallocated
    only when asked (libvirt ignores <allocation> for qcow2 without the flag)."""
    from pyv2v.v2v.outputs.libvirt import VolumeDestination

    conn = daemon.connect()
    try:
        pool = conn.storagePoolLookupByName("default")
        dest = VolumeDestination(pool, str(pool_dir(daemon)), f"q-{preallocate}", "qcow2",
                                 preallocate)
        dest.create(64 << 20)
        try:
            info = json.loads(subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", dest.location], check=True,
                capture_output=True, text=True).stdout)
            extents = json.loads(subprocess.run(
                ["qemu-img", "map", "-U", "--output=json", dest.location], check=True,
                capture_output=True, text=True).stdout)
        finally:
            dest.abort()
    finally:
        conn.close()
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 << 20
    assert info["format-specific"]["data"]["compat"] == "1.1", info
    mapped = sum(e["length"] for e in extents if "offset" in e)  # clusters with a host offset
    assert mapped == (64 << 20 if preallocate else 0), extents
    assert f"q-{preallocate}" not in pool_volumes(daemon)  # abort() deleted it (the module's
    assert not os.path.exists(dest.location)                 # conversion may be defined here)
