"""-i libvirt -ic esx://… -ip FILE: the ESXi/vCenter input against a local HTTPS datastore
(pyv2v_harness.esx_datastore: self-signed certificate, basic auth, ranges) serving the vmx-flat
export of the debian12-physical fixture (a flat VMDK + its descriptor).

No VMware exists here.  What is real: libvirt (its ESX driver against our server for the TLS
and connection errors; its test driver reading a recorded ESX domain XML for the metadata),
the HTTPS checks, nbdkit's curl plugin, the pipeline, the boot.  The one seam: a launcher
replaces `esx.open_metadata` (the libvirt connection) by libvirt's `test:///FILE` driver on the
recorded XML; everything after the connection (lookup, state, XML, disks) is the product's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from v2v_fixtures import Conversion, sha256
from v2v_helpers import assert_one_line_error

from pyv2v_harness import vmware
from pyv2v_harness.esx_datastore import DatastoreServer

pytestmark = [pytest.mark.slow]

NAME = "deb12esx"
PASSWORD = 'esx s3cret "Pw\\'  # quotes and a backslash: curl -K quoting
# As libvirt's ESX driver emits a VM (esx_vmx.c: type vmware, lsilogic SCSI, a bridge NIC named
# after the port group, vmware:datacenterpath); test:runstate (5 = shut off) is for the test
# driver, which drops the vmware: element.
RECORDED_XML = """<domain type='vmware' xmlns:vmware='http://libvirt.org/schemas/domain/vmware/1.0'
 xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
  <name>{name}</name>
  <uuid>564d9bdc-4ae6-2b2d-9b0e-62a2b07b5f10</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <cputune><shares>2000</shares></cputune>
  <os><type arch='x86_64'>hvm</type></os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='[datastore1] {folder}/{vmdk}'/>
      <target dev='sda' bus='scsi'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='scsi' index='0' model='lsilogic'/>
    <interface type='bridge'>
      <mac address='{mac}' type='static'/>
      <source bridge='VM Network'/>
      <model type='vmxnet3'/>
    </interface>
    <video type='vmvga'><model type='vmvga' vram='8192' primary='yes'/></video>
  </devices>
  <test:runstate>{state}</test:runstate>
  <vmware:datacenterpath>ha-datacenter</vmware:datacenterpath>
  <vmware:moref>12</vmware:moref>
</domain>"""

# The seam: the libvirt connection is libvirt's test driver on the recorded XML (argv[1]).
LAUNCHER = """import sys, libvirt
from pyv2v.v2v.inputs import esx
node = sys.argv.pop(1)
esx.open_metadata = lambda ic, user, password: libvirt.openReadOnly("test://" + node)
from pyv2v.v2v.cli import main
sys.exit(main())
"""


def recorded(tmp: Path, state: int = 5, vmdk: str = f"{vmware.NAME}.vmdk") -> Path:
    node = tmp / f"node-{state}-{vmdk}.xml"
    node.write_text(
        "<node>"
        + RECORDED_XML.format(name=NAME, folder="deb12", vmdk=vmdk, mac=vmware.MAC0, state=state)
        + "</node>"
    )
    return node


def run_esx(node: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    launcher = node.parent / "launch_v2v.py"
    launcher.write_text(LAUNCHER)
    return subprocess.run(
        [sys.executable, str(launcher), str(node), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _server(tmp: Path) -> DatastoreServer:
    flat_dir = vmware.ensure_export("vmx-flat").parent
    (tmp / "ds").mkdir()
    (tmp / "ds" / "deb12").symlink_to(flat_dir)  # [datastore1] deb12/… → the flat VMDK
    pw = tmp / "password"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    return DatastoreServer({"datastore1": tmp / "ds"}, "root", PASSWORD, tmp).start()


@pytest.fixture
def datastore(debian12_physical: Path, tmp_path: Path) -> Iterator[DatastoreServer]:
    srv = _server(tmp_path)
    yield srv
    srv.stop()


def _ic(srv: DatastoreServer, args: tuple[str, ...] = ()) -> list[str]:
    return ["-i", "libvirt", "-ic", srv.uri(), "-ip", str(srv.workdir / "password"), *args, NAME]


def test_esx_source_reads_the_datastore(
    datastore: DatastoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the Source, the bytes nbdkit-curl serves, no password in any argv."""
    import libvirt
    import nbd as libnbd

    from pyv2v import process
    from pyv2v.v2v.inputs import esx
    from pyv2v.v2v.inputs.base import InputOptions

    node = recorded(datastore.workdir)
    monkeypatch.setattr(
        esx, "open_metadata", lambda ic, user, pw: libvirt.openReadOnly(f"test://{node}")
    )
    flat = datastore.workdir / "ds" / "deb12" / f"{vmware.NAME}-flat.vmdk"
    try:
        src = esx.esx_source(
            InputOptions(
                args=(NAME,),
                input_conn=datastore.uri(),
                password_file=str(datastore.workdir / "password"),
            )
        )
        assert (src.name, src.hypervisor, src.vcpus, src.memory) == (NAME, "vmware", 2, 1 << 30)
        assert [(n.mac, n.vnet, n.vnet_type) for n in src.nics] == [
            (vmware.MAC0, "VM Network", "bridge")
        ]
        (disk,) = src.disks
        assert disk.format == "raw" and disk.location.startswith("nbd+unix:///?socket=")
        sock = disk.location.split("socket=", 1)[1]
        workdir = os.path.dirname(sock)
        assert os.stat(workdir).st_mode & 0o777 == 0o700
        assert os.stat(os.path.join(workdir, "curl0.conf")).st_mode & 0o777 == 0o600
        assert os.stat(os.path.join(workdir, "cookie0.sh")).st_mode & 0o777 == 0o700
        for pid in filter(str.isdigit, os.listdir("/proc")):  # never in any argv
            try:
                assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
        h = libnbd.NBD()
        h.connect_uri(disk.location)
        size = h.get_size()
        assert size == flat.stat().st_size
        with open(flat, "rb") as f:
            for off in (0, 1 << 20, size // 2, size - (1 << 20)):
                f.seek(off)
                assert h.pread(1 << 20, off) == f.read(1 << 20), off
        h.shutdown()
    finally:
        process.cleanup_all()
    assert datastore.cookie_requests > 0  # nbdkit read with the session cookie
    paths = [r.path.split("?")[0] for r in datastore.requests]
    assert paths[0] == f"/folder/deb12/{vmware.NAME}.vmdk"  # the descriptor first
    assert all(
        r.authorized and "dsName=datastore1" in r.path and "dcPath=ha-datacenter" in r.path
        for r in datastore.requests
    )


def _print_source(srv: DatastoreServer, node: Path, ic: str) -> str:
    res = run_esx(node, "-i", "libvirt", "-ic", ic, "-ip", str(srv.workdir / "password"), NAME,
                  "--print-source", timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr and PASSWORD not in res.stdout + res.stderr
    return res.stdout


def test_esx_print_source(datastore: DatastoreServer, tmp_path: Path) -> None:
    """The command line, no appliance: the recorded guest, its disk an NBD export of nbdkit-curl
    reading the datastore (descriptor checked first), its NIC's MAC."""
    out = _print_source(datastore, recorded(tmp_path), datastore.uri())
    assert f"source name: {NAME}" in out and "hypervisor type: vmware" in out
    assert f"memory: {1 << 30} (bytes)" in out and "nr vCPUs: 2" in out
    disks = out.split("disks:\n")[1].split("removable media:")[0].splitlines()
    assert len(disks) == 1 and disks[0].strip().startswith("nbd+unix:///?socket="), out
    nics = out.split("NICs:\n")[1].splitlines()
    assert len(nics) == 1 and nics[0].startswith(f'\tBridge "VM Network" mac: {vmware.MAC0}'), out
    assert "over HTTPS" in out
    assert any(r.path.startswith(f"/folder/deb12/{vmware.NAME}-flat.vmdk?")
               and "dcPath=ha-datacenter" in r.path for r in datastore.requests)


def test_vpx_datacenter_path(datastore: DatastoreServer, tmp_path: Path) -> None:
    """vpx://user@vcenter/DC1/esxi1: the datacenter (the URI path less its host) is the dcPath
    of every datastore URL (the recorded XML carries none: libvirt's test driver drops it); the
    server answers 404 for any other datacenter."""
    datastore.datacenter = "DC1"
    _print_source(datastore, recorded(tmp_path), datastore.uri("vpx", path="/DC1/esxi1"))
    assert datastore.requests and all(
        "dcPath=DC1&" in r.path and "dsName=datastore1" in r.path for r in datastore.requests)


def test_esx_bad_input(datastore: DatastoreServer, tmp_path: Path) -> None:
    """One line each, before any appliance; the real ESX driver for the connection errors."""
    node = recorded(tmp_path)
    pw = str(datastore.workdir / "password")
    out = tmp_path / "out"
    out.mkdir()
    to = ("-o", "local", "-os", str(out))

    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    wrong.chmod(0o600)
    res = run_esx(node, "-i", "libvirt", "-ic", datastore.uri(), "-ip", str(wrong), NAME, *to)
    assert_one_line_error(res, "incorrect username or password")
    assert "nope" not in res.stderr + res.stdout

    res = run_esx(node, "-i", "libvirt", "-ic", datastore.uri(query=""), "-ip", pw, NAME, *to)
    assert_one_line_error(res, "TLS certificate", "cannot be verified", "no_verify=1")

    res = run_esx(recorded(tmp_path, vmdk="gone.vmdk"), *_ic(datastore), *to)
    assert_one_line_error(res, "URL not found", "gone.vmdk")

    res = run_esx(node, *_ic(datastore)[:-1], "nosuchvm", *to)
    assert_one_line_error(res, "no domain called nosuchvm on esx://")

    res = run_esx(recorded(tmp_path, state=1), *_ic(datastore), *to)
    assert_one_line_error(res, NAME, "is running", "must be shut down")

    res = run_esx(node, *_ic(datastore, ("-it", "vddk")), *to)
    assert_one_line_error(res, "-it vddk", "VDDK")

    loose = tmp_path / "loose"
    loose.write_text(PASSWORD + "\n")
    loose.chmod(0o644)
    res = run_esx(node, "-i", "libvirt", "-ic", datastore.uri(), "-ip", str(loose), NAME, *to)
    assert_one_line_error(res, "readable by other users")
    res = run_esx(node, "-i", "libvirt", "-ic", datastore.uri(), NAME, *to)
    assert_one_line_error(res, "expecting -ip")
    res = run_esx(node, "-i", "disk", "-ip", pw, str(node), *to)
    assert_one_line_error(res, "-ip", "does not use a password file")

    # No seam: libvirt's real ESX driver against the server (not a vSphere SDK).
    v2v = str(Path(sys.executable).with_name("v2v"))
    res = subprocess.run(
        [v2v, "-i", "libvirt", "-ic", datastore.uri(query=""), "-ip", pw, NAME, *to],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_one_line_error(res, "certificate", "no_verify=1")
    res = subprocess.run(
        [v2v, *_ic(datastore), *to], capture_output=True, text=True, timeout=120, check=False
    )
    assert_one_line_error(res, "cannot connect to esx://")
    assert os.listdir(out) == []
    assert all(PASSWORD not in r.path for r in datastore.requests)


# --- one real conversion over HTTPS, and its boot ---------------------------------------------


@pytest.fixture(scope="session")
def converted_esx(
    debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Conversion]:
    work = tmp_path_factory.mktemp("v2v-esx")
    srv = _server(work)
    out = work / "out"
    out.mkdir()
    flat = work / "ds" / "deb12" / f"{vmware.NAME}-flat.vmdk"
    args = [*_ic(srv), "-o", "local", "-os", str(out)]
    try:
        before = sha256(flat)
        start = time.monotonic()
        res = run_esx(recorded(work), *args)
        took = time.monotonic() - start
        print(
            f"\nv2v {' '.join(args)}: rc={res.returncode} in {took:.0f} s\n{res.stdout}\n"
            f"{res.stderr[-3000:]}"
        )
        c = Conversion(
            flat, out, args, res.returncode, res.stdout, res.stderr, took, before, sha256(flat)
        )
        c.requests = list(srv.requests)  # type: ignore[attr-defined]
        c.bytes_sent = srv.bytes_sent  # type: ignore[attr-defined]
        yield c
    finally:
        srv.stop()


def test_esx_conversion(converted_esx: Conversion) -> None:
    c = converted_esx
    assert c.rc == 0, c.stderr[-2000:]
    assert "Traceback" not in c.stderr and PASSWORD not in c.stdout + c.stderr
    assert c.sha_before == c.sha_after  # the datastore file was never written
    assert sorted(os.listdir(c.outdir)) == [f"{NAME}-sda", f"{NAME}.xml"]
    assert os.stat(c.outdir / f"{NAME}-sda").st_size == 2 << 30
    root = etree.parse(str(c.outdir / f"{NAME}.xml")).getroot()
    assert root.findtext("memory") == str(1024 * 1024) and root.findtext("vcpu") == "2"
    mac = root.find("./devices/interface/mac")
    assert mac is not None and mac.get("address") == vmware.MAC0
    assert "over HTTPS" in c.stdout
    requests = c.requests  # type: ignore[attr-defined]
    assert {r.method for r in requests} == {"GET", "HEAD"}
    assert all(r.authorized and r.status in (200, 206) for r in requests)
    assert any(
        r.range and r.path.startswith(f"/folder/deb12/{vmware.NAME}-flat.vmdk?") for r in requests
    )  # the data came over HTTPS, in ranges
    assert c.bytes_sent > 100 << 20  # type: ignore[attr-defined]


@pytest.mark.boot
def test_converted_esx_boots(converted_esx: Conversion, boot) -> None:  # type: ignore[no-untyped-def]
    assert converted_esx.rc == 0, converted_esx.stderr[-2000:]
    res = boot(
        converted_esx.outdir / f"{NAME}-sda",
        bus="virtio-blk",
        nic_model="virtio-net-pci",
        mac=vmware.MAC0,
    )
    assert res.outcome == "login", f"see {res.console_log}"
