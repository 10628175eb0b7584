"""-i vmx without an appliance: the VMX parser (disk order, present=FALSE, NICs, topology,
firmware), disks confined to the VMX's directory, VMDK subformats, CLI -it/-io refusals, and a
property test (any VMX text → a machine or a one-line V2VError)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from v2v_helpers import assert_one_line_error, run_v2v

from pyv2v.errors import V2VError
from pyv2v.v2v.inputs.base import InputOptions
from pyv2v.v2v.inputs.vmdk import check_subformat
from pyv2v.v2v.inputs.vmx import VmxInput
from pyv2v.v2v.inputs.vmxfile import machine_from_vmx, parse_vmx_text

VMX = """.encoding = "UTF-8"
displayName = "db|2201"
memSize = "4096"
numvcpus = "4"
cpuid.coresPerSocket = "2"
firmware = "efi"
uefi.secureBoot.enabled = "TRUE"
ide0:0.present = "TRUE"
ide0:0.deviceType = "ata-hardDisk"
ide0:0.fileName = "ide.vmdk"
ide1:0.present = "TRUE"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "boot.iso"
nvme0.present = "TRUE"
nvme0:0.present = "TRUE"
nvme0:0.fileName = "nvme.vmdk"
scsi1.present = "TRUE"
scsi1:0.fileName = "scsi1.vmdk"
scsi0.present = "TRUE"
scsi0:2.fileName = "scsi0-2.vmdk"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:0.fileName = "scsi0-0.vmdk"
scsi0:1.present = "FALSE"
scsi0:1.fileName = "gone.vmdk"
scsi2.present = "FALSE"
scsi2:0.fileName = "controller-gone.vmdk"
sata0:0.fileName = "sata.vmdk"
ethernet1.present = "TRUE"
ethernet1.virtualDev = "e1000"
ethernet1.connectionType = "bridged"
ethernet1.addressType = "static"
ethernet1.address = "00:50:56:00:00:02"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.generatedAddress = "00:0C:29:AA:BB:CC"
ethernet2.present = "FALSE"
ethernet2.generatedAddress = "00:0c:29:00:00:09"
# a comment
"""


def test_vmx_facts() -> None:
    m = machine_from_vmx(parse_vmx_text(VMX))
    assert m.name == 'db"01'  # |22 is an escaped quote
    assert (m.memory, m.vcpus, m.cores_per_socket) == (4096 * 2**20, 4, 2)
    assert (m.firmware, m.secure_boot) == ("uefi", True)
    # SCSI (by controller, then target), SATA, NVMe, IDE; absent devices/controllers skipped
    assert [d.filename for d in m.disks] == ["scsi0-0.vmdk", "scsi0-2.vmdk", "scsi1.vmdk",
                                             "sata.vmdk", "nvme.vmdk", "ide.vmdk"]
    assert m.removables == ("cdrom",)
    assert [(n.port, n.mac, n.network, n.vnet_type, n.model) for n in m.nics] == [
        (0, "00:0c:29:aa:bb:cc", "VM Network", "network", "vmxnet3"),
        (1, "00:50:56:00:00:02", "ethernet1", "bridge", "e1000")]


def test_vmx_defaults() -> None:
    m = machine_from_vmx(parse_vmx_text('scsi0:0.fileName = "a.vmdk"\n'))
    assert (m.name, m.memory, m.vcpus, m.firmware, m.cores_per_socket) == (
        None, 32 * 2**20, 1, "bios", None)


@pytest.mark.parametrize("text,needle", [
    ("this is not a vmx\n", "cannot parse"),
    ('numvcpus = "many"\n', "not a number"),
    ('memsize = "-5"\n', "memsize"),
    ("a = \"b\"\0\n", "binary"),
])
def test_bad_vmx_one_line(text: str, needle: str) -> None:
    with pytest.raises(V2VError, match=needle) as e:
        machine_from_vmx(parse_vmx_text(text))
    assert "\n" not in str(e.value)


@settings(max_examples=int(os.environ.get("PYV2V_FUZZ_EXAMPLES", "300")), deadline=None,
          database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_vmx_is_a_machine_or_one_line_error(data: st.DataObject) -> None:
    lines = VMX.splitlines()
    mode = data.draw(st.sampled_from(["drop", "splice", "text", "value"]))
    if mode == "drop":
        keep = data.draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
        text = "\n".join(ln for ln, k in zip(lines, keep, strict=True) if k)
    elif mode == "splice":
        i = data.draw(st.integers(0, len(VMX)))
        text = VMX[:i] + data.draw(st.text(max_size=30)) + VMX[i:]
    elif mode == "value":
        key = data.draw(st.sampled_from(["numvcpus", "memSize", "cpuid.coresPerSocket",
                                         "firmware", "ethernet0.generatedAddress"]))
        text = VMX + f'{key} = "{data.draw(st.text(max_size=12).filter(lambda s: chr(34) not in s and chr(10) not in s and chr(13) not in s))}"\n'  # noqa: E501
    else:
        text = data.draw(st.text(max_size=200))
    try:
        m = machine_from_vmx(parse_vmx_text(text))
    except V2VError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert m.vcpus >= 1 and m.memory > 0


# --- the input: files next to the VMX ------------------------------------------------------------

def _vmdk(path: Path, subformat: str = "monolithicSparse", size: str = "8M") -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", f"subformat={subformat}",
                    str(path), size], check=True)


def _vmx(d: Path, *files: str) -> Path:
    text = 'displayName = "t"\n' + "".join(f'scsi0:{i}.fileName = "{f}"\n'
                                            for i, f in enumerate(files))
    (d / "t.vmx").write_text(text)
    return d / "t.vmx"


def test_sparse_and_flat(tmp_path: Path) -> None:
    _vmdk(tmp_path / "a.vmdk")
    _vmdk(tmp_path / "b.vmdk", "monolithicFlat")
    src = VmxInput().source(InputOptions(args=(str(_vmx(tmp_path, "a.vmdk", "b.vmdk")),)))
    assert [(Path(d.location).name, d.format, d.size) for d in src.disks] == [
        ("a.vmdk", "vmdk", 8 << 20), ("b.vmdk", "vmdk", 8 << 20)]
    assert src.hypervisor == "vmware" and src.name == "t"


def test_missing_vmdk_named(tmp_path: Path) -> None:
    with pytest.raises(V2VError, match=r"names disk nothere.vmdk, which does not exist"):
        VmxInput().source(InputOptions(args=(str(_vmx(tmp_path, "nothere.vmdk")),)))


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.vmdk"])
def test_disk_outside_the_vmx_directory(tmp_path: Path, name: str) -> None:
    d = tmp_path / "vm"
    d.mkdir()
    _vmdk(tmp_path / "outside.vmdk")
    with pytest.raises(V2VError, match="outside"):
        VmxInput().source(InputOptions(args=(str(_vmx(d, name)),)))


def test_extent_outside_the_directory(tmp_path: Path) -> None:
    d = tmp_path / "vm"
    d.mkdir()
    _vmdk(tmp_path / "x.vmdk", "monolithicFlat")
    desc = (tmp_path / "x.vmdk").read_text().replace('"x-flat.vmdk"', '"../x-flat.vmdk"')
    (d / "a.vmdk").write_text(desc)
    with pytest.raises(V2VError, match="refusing VMDK extent"):
        VmxInput().source(InputOptions(args=(str(_vmx(d, "a.vmdk")),)))


def test_unsupported_subformat(tmp_path: Path) -> None:
    (tmp_path / "a.vmdk").write_text('# Disk DescriptorFile\nversion=1\n'
                                     'createType="vmfsRawDeviceMap"\n'
                                     'RW 2048 VMFSRDM "a-rdm.vmdk"\n')
    with pytest.raises(V2VError, match="unsupported VMDK subformat 'vmfsRawDeviceMap'"):
        VmxInput().source(InputOptions(args=(str(_vmx(tmp_path, "a.vmdk")),)))
    _vmdk(tmp_path / "s.vmdk", "streamOptimized")
    assert check_subformat(str(tmp_path / "s.vmdk")) == "streamOptimized"


def test_cli_refusals_one_line(tmp_path: Path) -> None:
    _vmdk(tmp_path / "a.vmdk")
    vmx = str(_vmx(tmp_path, "a.vmdk"))
    assert_one_line_error(run_v2v("-i", "vmx", "-it", "vddk", vmx, "--print-source"),
                          "proprietary")
    assert_one_line_error(run_v2v("-i", "disk", "-it", "ssh", vmx, "--print-source"),
                          "-it ssh", "no input transport")
    assert_one_line_error(run_v2v("-i", "vmx", "-io", "skip-manifest", vmx, "--print-source"),
                          "-io skip-manifest")
    assert_one_line_error(run_v2v("-i", "vmx", "vmx+ssh://h/x.vmx", "--print-source"),
                          "-it ssh")
    res = run_v2v("-i", "vmx", vmx, "--print-source")
    assert res.returncode == 0 and "scsi0:0" in res.stdout, res.stderr


@pytest.mark.parametrize("uri,needle", [
    ("http://h/x.vmx", r"not a vmx\+ssh://"), ("vmx+ssh:///x.vmx", "no host"),
    ("vmx+ssh://h", "no VMX path"), ("vmx+ssh://u:pw@h/x.vmx", "passwords in the URI"),
    ("vmx+ssh://h:99999/x.vmx", "bad port"),
])
def test_ssh_uri_refusals(uri: str, needle: str, tmp_path: Path) -> None:
    from pyv2v.v2v.inputs.vmx_ssh import parse_uri

    with pytest.raises(V2VError, match=needle):
        parse_uri(uri, str(tmp_path / "key"))


def test_ssh_uri(tmp_path: Path) -> None:
    from pyv2v.v2v.inputs.vmx_ssh import parse_uri

    t, path = parse_uri("vmx+ssh://admin@esx.example:2222/vmfs/volumes/ds%201/g/g.vmx", "/k")
    assert (t.host, t.port, t.user, t.identity, path) == (
        "esx.example", 2222, "admin", "/k", "/vmfs/volumes/ds 1/g/g.vmx")
    t, _ = parse_uri("ssh://esx/g.vmx", "/k")
    assert (t.user, t.port) == ("root", 22)
