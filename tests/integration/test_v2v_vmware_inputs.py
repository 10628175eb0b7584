"""-i ova and -i vmx on VMware/VirtualBox exports generated from the debian12-physical fixture
(pyv2v_harness.vmware): --print-source for every kind (no appliance), bad input with the real
files (one line, nothing written), two real conversions that boot (a VMware OVA read in
place from its tar, a two-disk VMX with monolithicSparse VMDKs), and the VirtualBox OVA and the
unpacked OVA directory opened by the input and compared byte for byte with the guest."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from lxml import etree
from v2v_fixtures import Conversion, convert
from v2v_helpers import assert_one_line_error, run_v2v

from pyv2v_harness import vmware

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="session")
def exports(debian12_physical: Path) -> dict[str, Path]:
    return {k: vmware.ensure_export(k) for k in vmware.KINDS}


EXPECT = {  # kind: (input mode, hypervisor, memory, vCPUs, topology, disks, NIC line)
    "ova-vmware": ("ova", "vmware", 1024, 2, "sockets: 1 cores/socket: 2", 1,
                   f'Bridge "VM Network" mac: {vmware.MAC0}'),
    "ova-vbox": ("ova", "virtualbox", 768, 1, "", 1, f'Bridge "NAT" mac: {vmware.MAC1}'),
    "ova-dir": ("ova", "vmware", 1024, 2, "sockets: 1 cores/socket: 2", 1,
                f'Bridge "VM Network" mac: {vmware.MAC0}'),
    "vmx-sparse": ("vmx", "vmware", 1024, 2, "sockets: 2 cores/socket: 1", 1,
                   f'Network "VM Network" mac: {vmware.MAC0}'),
    "vmx-flat": ("vmx", "vmware", 1024, 2, "sockets: 2 cores/socket: 1", 1,
                 f'Network "VM Network" mac: {vmware.MAC0}'),
    "vmx-2disk": ("vmx", "vmware", 1024, 2, "sockets: 2 cores/socket: 1", 2,
                  f'Network "VM Network" mac: {vmware.MAC0}'),
}


@pytest.mark.parametrize("kind", vmware.KINDS)
def test_print_source(exports: dict[str, Path], kind: str) -> None:
    mode, hyp, mem, vcpus, topo, ndisks, nic = EXPECT[kind]
    res = run_v2v("-i", mode, str(exports[kind]), "--print-source", timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert f"source name: {vmware.NAME}" in out and f"hypervisor type: {hyp}" in out
    assert f"memory: {mem * 2**20} (bytes)" in out and f"nr vCPUs: {vcpus}" in out
    assert f"CPU topology: {topo}" in out and "firmware: bios" in out
    disks = out.split("disks:\n")[1].split("removable media:")[0].splitlines()
    assert len(disks) == ndisks and all("(vmdk)" in d for d in disks), out
    if kind.startswith("ova-") and kind != "ova-dir":
        assert disks[0].strip().startswith('json:{"file":{"driver":"raw","offset":')  # in place
    assert "removable media:\n\tcdrom\n" in out
    nics = out.split("NICs:\n")[1].splitlines()
    assert nics == [f"\t{nic}"], out  # ethernet1 is present = "FALSE" in the VMX


def _small_ova(tmp: Path, exports: dict[str, Path], mutate: str) -> Path:
    """The VMware OVA's OVF and manifest with a 1 MiB raw disk (cheap to build), mutated."""
    src = exports["ova-dir"]
    d = tmp / "small"
    d.mkdir()
    ovf = (src / f"{vmware.NAME}.ovf").read_text()
    disk = d / f"{vmware.NAME}-disk1.vmdk"
    disk.write_bytes(b"\0" * (1 << 20))
    if mutate == "no-disks":
        start = ovf.index("<Item><rasd:AddressOnParent>0</rasd:AddressOnParent>\n        <rasd:"
                          "ElementName>Hard disk 1")
        ovf = ovf[:start] + ovf[ovf.index("</Item>", start) + len("</Item>"):]
    (d / f"{vmware.NAME}.ovf").write_text(ovf)
    (d / f"{vmware.NAME}.mf").write_text(f"SHA256({disk.name})= " + "ab" * 32 + "\n")
    out = tmp / "small.ova"
    with tarfile.open(out, "w") as tar:
        for p in sorted(d.iterdir()):
            tar.add(p, arcname=p.name)
    return out


def _bad(tmp: Path, exports: dict[str, Path], case: str) -> tuple[list[str], tuple[str, ...]]:
    if case == "corrupt-ova":
        p = tmp / "corrupt.ova"
        p.write_bytes(os.urandom(1 << 16))
        return ["-i", "ova", str(p)], ("not a valid OVA",)
    if case == "truncated-ova":
        p = tmp / "trunc.ova"
        with open(exports["ova-vmware"], "rb") as f, open(p, "wb") as g:
            g.write(f.read(8 << 20))
        return ["-i", "ova", str(p)], ("truncated",)
    if case == "manifest-mismatch":
        return ["-i", "ova", str(_small_ova(tmp, exports, ""))], (
            "checksum of deb12vm-disk1.vmdk does not match the manifest deb12vm.mf",)
    if case == "ovf-without-disks":
        return ["-i", "ova", "-io", "skip-manifest", str(_small_ova(tmp, exports, "no-disks"))], (
            "describes no disks",)
    vmx_dir = tmp / "vm"
    vmx_dir.mkdir()
    src = exports["vmx-sparse"]
    os.link(src.with_suffix(".vmdk"), vmx_dir / f"{vmware.NAME}.vmdk")  # read-only use
    vmx = vmx_dir / f"{vmware.NAME}.vmx"   # a copy: it is edited below
    text = src.read_text()
    if case == "vmx-missing-vmdk":
        vmx.write_text(text.replace(f"{vmware.NAME}.vmdk", "lost.vmdk"))
        return ["-i", "vmx", str(vmx)], ("names disk lost.vmdk, which does not exist",)
    if case == "extent-outside":
        (tmp / "secret-flat.vmdk").write_bytes(b"s" * 4096)
        (vmx_dir / "evil.vmdk").write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\n'
                                           'parentCID=ffffffff\ncreateType="monolithicFlat"\n'
                                           'RW 8 FLAT "../secret-flat.vmdk" 0\n')
        vmx.write_text(text.replace(f"{vmware.NAME}.vmdk", "evil.vmdk"))
        return ["-i", "vmx", str(vmx)], ("refusing VMDK extent ../secret-flat.vmdk",)
    assert case == "unsupported-subformat"
    (vmx_dir / "rdm.vmdk").write_text('# Disk DescriptorFile\nversion=1\ncreateType="vmfsRaw"\n'
                                      'RW 8 VMFSRAW "/dev/sda" 0\n')
    vmx.write_text(text.replace(f"{vmware.NAME}.vmdk", "rdm.vmdk"))
    return ["-i", "vmx", str(vmx)], ("unsupported VMDK subformat 'vmfsRaw'",)


@pytest.mark.parametrize("case", ["corrupt-ova", "truncated-ova", "manifest-mismatch",
                                  "ovf-without-disks", "vmx-missing-vmdk", "extent-outside",
                                  "unsupported-subformat"])
def test_bad_input_one_line_nothing_written(exports: dict[str, Path], tmp_path: Path,
                                            case: str) -> None:
    args, needles = _bad(tmp_path, exports, case)
    out = tmp_path / "out"
    out.mkdir()
    res = run_v2v(*args, "-o", "local", "-os", str(out), timeout=300)
    assert_one_line_error(res, *needles)
    assert os.listdir(out) == []


# --- real conversions (appliance) and boots --------------------------------------------------

@pytest.fixture(scope="session")
def converted_ova(exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                  ) -> Conversion:
    out = tmp_path_factory.mktemp("v2v-ova")
    ova = exports["ova-vmware"]
    return convert(ova, out, "-i", "ova", str(ova), "-o", "local", "-os", str(out))


@pytest.fixture(scope="session")
def converted_vmx(exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                  ) -> Conversion:
    out = tmp_path_factory.mktemp("v2v-vmx")
    vmx = exports["vmx-2disk"]
    return convert(vmx.with_suffix(".vmdk"), out, "-i", "vmx", str(vmx), "-o", "local",
                   "-os", str(out))


def _check_written(c: Conversion, ndisks: int) -> etree._Element:
    assert c.rc == 0, c.stderr[-2000:]
    assert "Traceback" not in c.stderr
    assert c.sha_before == c.sha_after  # the OVA / VMDK was never written
    names = sorted(os.listdir(c.outdir))
    assert names == sorted([f"{vmware.NAME}-sd{chr(97 + i)}" for i in range(ndisks)]
                           + [f"{vmware.NAME}.xml"])
    root = etree.parse(str(c.outdir / f"{vmware.NAME}.xml")).getroot()
    assert root.findtext("memory") == str(1024 * 1024)  # KiB
    mac = root.find("./devices/interface/mac")
    assert mac is not None and mac.get("address") == vmware.MAC0
    return root


def test_ova_conversion(converted_ova: Conversion) -> None:
    _check_written(converted_ova, 1)
    assert "Extracting" not in converted_ova.stdout  # the tar was read in place
    disk = converted_ova.outdir / f"{vmware.NAME}-sda"
    assert os.stat(disk).st_size == 2 << 30


def test_vmx_two_disk_conversion(converted_vmx: Conversion) -> None:
    root = _check_written(converted_vmx, 2)
    devs = [d.get("dev") for d in root.findall("./devices/disk[@device='disk']/target")]
    assert devs == ["vda", "vdb"]
    blank = converted_vmx.outdir / f"{vmware.NAME}-sdb"
    assert os.stat(blank).st_size == vmware.BLANK_MIB << 20


@pytest.mark.parametrize("kind", ["ova-vbox", "ova-dir"])
def test_other_ova_kinds_read_the_guest(exports: dict[str, Path], debian12_physical: Path,
                                        kind: str) -> None:
    """The VirtualBox-style OVA (tar, SHA1 manifest) and the unpacked OVA directory: the input
    verifies the manifest, parses the OVF dialect and opens a disk whose bytes are exactly the
    guest's (qemu-img compare of what the input opens, the tar member read in place, against
    the fixture).  The rest of the pipeline is the VMware OVA's, converted and booted above;
    these two were full -o null conversions until the suite had to fit its hour."""
    from pyv2v.v2v.inputs import get
    from pyv2v.v2v.inputs.base import InputOptions

    src = get("ova").source(InputOptions(args=(str(exports[kind]),)))
    mac = vmware.MAC1 if kind == "ova-vbox" else vmware.MAC0  # VirtualBox's MAC: no colons
    assert src.name == vmware.NAME and [n.mac for n in src.nics] == [mac], src
    assert len(src.disks) == 1 and src.disks[0].format == "vmdk", src.disks
    loc = src.disks[0].location
    assert (loc.startswith("json:") and '"offset"' in loc) if kind == "ova-vbox" else \
        loc.endswith(".vmdk"), loc
    subprocess.run(["qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw", loc,
                    str(debian12_physical)], check=True, timeout=600)


def test_flat_vmdk_reads_the_same_bytes(exports: dict[str, Path], debian12_physical: Path
                                        ) -> None:
    """The flat descriptor + extent reads exactly the source guest (qemu-img compare)."""
    subprocess.run(["qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw",
                    str(exports["vmx-flat"].with_suffix(".vmdk")), str(debian12_physical)],
                   check=True, timeout=600)


def _boots(c: Conversion, boot, extra: list[tuple[Path, str]]) -> None:  # type: ignore[no-untyped-def]
    assert c.rc == 0, c.stderr[-2000:]
    res = boot(c.outdir / f"{vmware.NAME}-sda", bus="virtio-blk", nic_model="virtio-net-pci",
               mac=vmware.MAC0, extra_disks=extra)
    assert res.outcome == "login", f"see {res.console_log}"


# The conversion fixtures are named statically (not through request.getfixturevalue) so that
# tests/xdist_support.py keeps each conversion and its boot on one worker: converted once.
@pytest.mark.boot
def test_converted_ova_boots(converted_ova: Conversion, boot) -> None:  # type: ignore[no-untyped-def]
    _boots(converted_ova, boot, [])


@pytest.mark.boot
def test_converted_vmx_boots(converted_vmx: Conversion, boot) -> None:  # type: ignore[no-untyped-def]
    _boots(converted_vmx, boot, [(converted_vmx.outdir / f"{vmware.NAME}-sdb", "raw")])


# --- vmx+ssh:// against the loopback sshd ------------------------------------------------------

@pytest.fixture
def sshd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    from pyv2v_harness import loopback

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # a fresh known_hosts
    srv = loopback.start()
    yield srv
    srv.stop()


def _uri(srv, vmx: Path) -> str:  # type: ignore[no-untyped-def]
    return f"vmx+ssh://root@{srv.host}:{srv.port}{vmx}"


def test_vmx_over_ssh_reads_the_remote_disks(sshd, exports: dict[str, Path],  # type: ignore[no-untyped-def]
                                             debian12_physical: Path) -> None:
    import nbd as libnbd

    from pyv2v import process
    from pyv2v.v2v.inputs.base import InputOptions
    from pyv2v.v2v.inputs.vmx import VmxInput

    res = run_v2v("-i", "vmx", "-it", "ssh", _uri(sshd, exports["vmx-2disk"]),
                  "-io", f"ssh-identity={sshd.user_key}", "--print-source", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Recorded the host key" in res.stdout + res.stderr
    assert res.stdout.count("nbd+unix:///?socket=") == 2 and "(vmdk) [scsi0:1]" in res.stdout
    try:
        src = VmxInput().source(InputOptions(
            args=(_uri(sshd, exports["vmx-flat"]),), transport="ssh",
            extra={"ssh-identity": str(sshd.user_key)}))
        (disk,) = src.disks
        assert disk.format == "raw"  # the flat extent itself, served over sftp
        h = libnbd.NBD()
        h.connect_uri(disk.location)
        size = h.get_size()
        assert size == debian12_physical.stat().st_size
        with open(debian12_physical, "rb") as f:
            for off in (0, 1 << 20, size // 2, size - (1 << 20)):
                f.seek(off)
                assert h.pread(1 << 20, off) == f.read(1 << 20), off
        h.shutdown()
    finally:
        process.cleanup_all()


def test_vmx_over_ssh_bad_input(sshd, exports: dict[str, Path], tmp_path: Path  # type: ignore[no-untyped-def]
                                ) -> None:
    from pyv2v_harness import loopback

    key = f"ssh-identity={sshd.user_key}"
    port = loopback.free_port()  # nobody listens: "cannot reach VMX host 127.0.0.1:PORT …"
    res = run_v2v("-i", "vmx", "-it", "ssh", f"vmx+ssh://root@127.0.0.1:{port}"
                  f"{exports['vmx-sparse']}", "-io", key, "--print-source", timeout=120)
    assert_one_line_error(res, f"cannot reach VMX host 127.0.0.1:{port}")
    other = tmp_path / "other_key"
    loopback.keygen(other)
    res = run_v2v("-i", "vmx", "-it", "ssh", _uri(sshd, exports["vmx-sparse"]),
                  "-io", f"ssh-identity={other}", "--print-source", timeout=120)
    assert_one_line_error(res, "authentication as root", "failed")
    res = run_v2v("-i", "vmx", "-it", "ssh", _uri(sshd, tmp_path / "nothere.vmx"),
                  "-io", key, "--print-source", timeout=120)
    assert_one_line_error(res, "cannot read VMX file", "nothere.vmx")
