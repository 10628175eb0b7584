"""-i ova without an appliance: OVF dialects (VMware vmw:, VirtualBox vbox:), manifests, the
archive kinds (tar read in place, zip/compressed tar extracted, directory), hostile archives,
and a property test (any OVF text → an OvfMachine or a one-line V2VError)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyv2v.errors import V2VError
from pyv2v.v2v.inputs.base import InputOptions
from pyv2v.v2v.inputs.ova import OvaInput, resolve_href, verify_manifests
from pyv2v.v2v.inputs.ova_archive import DirArchive, TarArchive, open_ova
from pyv2v.v2v.inputs.ovf import memory_bytes, parse_ovf

HEAD = """<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
 xmlns:vmw="http://www.vmware.com/schema/ovf"
 xmlns:vbox="http://www.virtualbox.org/ovf/machine">
"""

VMWARE = HEAD + """
 <References>
  <File ovf:href="d-ide.vmdk" ovf:id="f0"/>
  <File ovf:href="d-scsi1.vmdk" ovf:id="f1"/>
  <File ovf:href="d-scsi0.vmdk.gz" ovf:id="f2" ovf:compression="gzip"/>
 </References>
 <DiskSection>
  <Disk ovf:diskId="ide" ovf:fileRef="f0"
   ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  <Disk ovf:diskId="s1" ovf:fileRef="f1"
   ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  <Disk ovf:diskId="s0" ovf:fileRef="f2"/>
 </DiskSection>
 <VirtualSystem ovf:id="vs"><Name>web01</Name><VirtualHardwareSection>
  <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType>
   <rasd:VirtualQuantity>4</rasd:VirtualQuantity><vmw:CoresPerSocket>2</vmw:CoresPerSocket></Item>
  <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>
   <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
  <Item><rasd:Address>0</rasd:Address><rasd:InstanceID>10</rasd:InstanceID>
   <rasd:ResourceType>5</rasd:ResourceType></Item>
  <Item><rasd:Address>0</rasd:Address><rasd:InstanceID>11</rasd:InstanceID>
   <rasd:ResourceType>6</rasd:ResourceType></Item>
  <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/ide</rasd:HostResource>
   <rasd:InstanceID>20</rasd:InstanceID><rasd:Parent>10</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
  <Item><rasd:AddressOnParent>1</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/s1</rasd:HostResource>
   <rasd:InstanceID>21</rasd:InstanceID><rasd:Parent>11</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
  <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/s0</rasd:HostResource>
   <rasd:InstanceID>22</rasd:InstanceID><rasd:Parent>11</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
  <Item><rasd:AddressOnParent>1</rasd:AddressOnParent><rasd:InstanceID>30</rasd:InstanceID>
   <rasd:Parent>10</rasd:Parent><rasd:ResourceType>15</rasd:ResourceType></Item>
  <Item><rasd:InstanceID>31</rasd:InstanceID><rasd:ResourceType>14</rasd:ResourceType></Item>
  <Item><rasd:Address>00:50:56:AA:BB:01</rasd:Address><rasd:Connection>VM Network</rasd:Connection>
   <rasd:InstanceID>40</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
   <rasd:ResourceType>10</rasd:ResourceType></Item>
  <Item><rasd:Connection>backup</rasd:Connection><rasd:InstanceID>41</rasd:InstanceID>
   <rasd:ResourceSubType>E1000</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
  <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
  <vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="true"/>
 </VirtualHardwareSection></VirtualSystem>
</Envelope>
"""

VBOX = HEAD + """
 <References><File ovf:id="file1" ovf:href="box-disk001.vmdk"/></References>
 <DiskSection><Disk ovf:diskId="vmdisk1" ovf:fileRef="file1"
   ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
 <VirtualSystem ovf:id="boxvm"><VirtualHardwareSection>
  <System><VirtualSystemType xmlns="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">virtualbox-2.2</VirtualSystemType></System>
  <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType>
   <rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
  <Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>
   <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>
  <Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>20</rasd:ResourceType></Item>
  <Item><rasd:Connection>NAT</rasd:Connection><rasd:InstanceID>4</rasd:InstanceID>
   <rasd:ResourceSubType>E1000</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
  <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:HostResource>/disk/vmdisk1</rasd:HostResource>
   <rasd:InstanceID>5</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
 </VirtualHardwareSection>
 <vbox:Machine ovf:required="false" name="boxvm"><Hardware><Firmware type="EFI"/>
  <Network><Adapter slot="0" enabled="true" MACAddress="080027ABCDEF"/>
  <Adapter slot="1" enabled="false" MACAddress="080027000000"/></Network></Hardware></vbox:Machine>
 </VirtualSystem>
</Envelope>
"""


def test_vmware_dialect() -> None:
    m = parse_ovf(VMWARE)
    assert (m.name, m.dialect, m.vcpus, m.cores_per_socket) == ("web01", "vmware", 4, 2)
    assert m.memory == 2048 * 2**20
    assert (m.firmware, m.secure_boot) == ("uefi", True)
    # SCSI before IDE, and on the SCSI controller by AddressOnParent (not document order)
    assert [d.href for d in m.disks] == ["d-scsi0.vmdk.gz", "d-scsi1.vmdk", "d-ide.vmdk"]
    assert [d.controller for d in m.disks] == ["scsi", "scsi", "ide"]
    assert [d.compressed for d in m.disks] == [True, False, False]
    assert (m.disks[1].format, m.disks[1].subformat) == ("vmdk", "streamOptimized")
    assert [(r.kind, r.controller) for r in m.removables] == [("cdrom", "ide"), ("floppy", None)]
    assert [(n.mac, n.network, n.vnet_type, n.model) for n in m.nics] == [
        ("00:50:56:aa:bb:01", "VM Network", "bridge", "vmxnet3"),
        (None, "backup", "bridge", "e1000")]


def test_virtualbox_dialect() -> None:
    m = parse_ovf(VBOX)
    assert (m.name, m.dialect, m.vcpus, m.memory) == ("boxvm", "virtualbox", 2, 512 * 2**20)
    assert m.firmware == "uefi" and not m.secure_boot
    assert [(d.href, d.controller) for d in m.disks] == [("box-disk001.vmdk", "sata")]
    assert [(n.mac, n.network) for n in m.nics] == [("08:00:27:ab:cd:ef", "NAT")]


@pytest.mark.parametrize("units,q,want", [(None, 3, 3 * 2**20), ("byte * 2^30", 2, 2 * 2**30),
                                          ("GigaBytes", 1, 2**30), ("byte*10^6", 5, 5 * 10**6)])
def test_memory_units(units: str | None, q: int, want: int) -> None:
    assert memory_bytes(q, units) == want


def test_bad_memory_units() -> None:
    with pytest.raises(V2VError, match="AllocationUnits"):
        memory_bytes(1, "furlongs")


@pytest.mark.parametrize("text,needle", [
    ("<!DOCTYPE x [<!ENTITY e 'x'>]><Envelope/>", "DOCTYPE"),
    ("<domain/>", "not an OVF"),
    ("<Envelope xmlns='http://schemas.dmtf.org/ovf/envelope/1'/>", "VirtualSystem"),
    (VMWARE.replace("ovf:/disk/s1", "nowhere"), "HostResource"),
    (VMWARE.replace('ovf:fileRef="f1"', ""), "empty disk"),
    (VMWARE.replace('ovf:compression="gzip"', 'ovf:compression="lzma"'), "compression"),
    ("not xml at all", "well-formed"),
])
def test_bad_ovf_one_line(text: str, needle: str) -> None:
    with pytest.raises(V2VError, match=needle) as e:
        parse_ovf(text)
    assert "\n" not in str(e.value)


@settings(max_examples=int(os.environ.get("PYV2V_FUZZ_EXAMPLES", "300")), deadline=None,
          database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_ovf_is_a_machine_or_one_line_error(data: st.DataObject) -> None:
    """Mutate the VMware OVF (cut, splice random text, replace numbers) or give random text."""
    base = data.draw(st.sampled_from([VMWARE, VBOX]))
    mode = data.draw(st.sampled_from(["cut", "splice", "text", "numbers"]))
    if mode == "cut":
        text = base[:data.draw(st.integers(0, len(base)))]
    elif mode == "splice":
        i = data.draw(st.integers(0, len(base)))
        text = base[:i] + data.draw(st.text(max_size=40)) + base[i:]
    elif mode == "numbers":
        text = base.replace(">2048<", f">{data.draw(st.text(max_size=8))}<").replace(
            ">4<", f">{data.draw(st.integers(-10, 10**9))}<")
    else:
        text = data.draw(st.text(max_size=200))
    try:
        m = parse_ovf(text)
    except V2VError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert m.vcpus >= 1 and m.memory > 0


# --- manifests and archives ------------------------------------------------------------------

def _raw_disk(path: Path, size: int = 1 << 20) -> bytes:
    data = (b"pyv2v-test-disk" * (size // 15 + 1))[:size]
    path.write_bytes(data)
    return data


def _ovf_one_disk(href: str, extra: str = "") -> str:
    return VBOX.replace("box-disk001.vmdk", href).replace("<File ovf:id", f"<File {extra} ovf:id")


def _dir_ova(tmp: Path, mf_fmt: str = "SHA256({})= {}\n", algo: str = "sha256") -> Path:
    d = tmp / "ova"
    d.mkdir()
    _raw_disk(d / "disk.img")
    (d / "g.ovf").write_text(_ovf_one_disk("disk.img"))
    (d / "g.mf").write_text("".join(mf_fmt.format(n, hashlib.new(algo, (d / n).read_bytes())
                                                  .hexdigest()) for n in ("g.ovf", "disk.img")))
    return d


def _tar(src: Path, out: Path, names: list[str] | None = None) -> Path:
    with tarfile.open(out, "w") as tar:
        for n in names or ["g.ovf", "g.mf", "disk.img"]:
            tar.add(src / n, arcname=n)
    return out


@pytest.mark.parametrize("fmt,algo", [("SHA256({})= {}\n", "sha256"),
                                      ("SHA1 ({}) = {}\n", "sha1")])
def test_manifest_verified(tmp_path: Path, fmt: str, algo: str) -> None:
    d = _dir_ova(tmp_path, fmt, algo)
    assert verify_manifests(DirArchive(str(d)), "") == 2


def test_manifest_mismatch_names_the_file(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    with open(d / "disk.img", "r+b") as f:
        f.write(b"X")
    with pytest.raises(V2VError, match=r"checksum of disk.img does not match the manifest g.mf"):
        verify_manifests(DirArchive(str(d)), "")


def test_tar_read_in_place_and_source(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    ova = _tar(d, tmp_path / "g.ova")
    ar = open_ova(str(ova))
    assert isinstance(ar, TarArchive)
    ref = ar.files["disk.img"]
    with open(ova, "rb") as f:
        f.seek(ref.offset)
        assert f.read(ref.size or 0) == (d / "disk.img").read_bytes()
    src = OvaInput().source(InputOptions(args=(str(ova),)))
    (disk,) = src.disks
    assert disk.location.startswith("json:") and disk.format == "raw" and disk.size == 1 << 20
    # qemu reads exactly the member's bytes through the json: spec (nothing unpacked)
    out = tmp_path / "read.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", disk.location, str(out)], check=True)
    assert out.read_bytes() == (d / "disk.img").read_bytes()
    assert (src.name, src.hypervisor, src.firmware) == ("boxvm", "virtualbox", "uefi")


def test_zip_and_gzip_are_extracted(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    with zipfile.ZipFile(tmp_path / "g.zip", "w") as z:
        for n in ("g.ovf", "g.mf", "disk.img"):
            z.write(d / n, n)
    src = OvaInput().source(InputOptions(args=(str(tmp_path / "g.zip"),)))
    assert os.path.isabs(src.disks[0].location) and src.disks[0].size == 1 << 20
    gz = tmp_path / "gz"
    gz.mkdir()
    (gz / "disk.img.gz").write_bytes(gzip.compress((d / "disk.img").read_bytes()))
    (gz / "g.ovf").write_text(_ovf_one_disk("disk.img.gz", 'ovf:compression="gzip"'))
    src = OvaInput().source(InputOptions(args=(str(_tar(gz, tmp_path / "gz.ova",
                                                        ["g.ovf", "disk.img.gz"])),)))
    assert Path(src.disks[0].location).read_bytes() == (d / "disk.img").read_bytes()


def test_skip_manifest(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    (d / "g.mf").write_text("SHA256(disk.img)= " + "0" * 64 + "\n")
    with pytest.raises(V2VError, match="does not match"):
        OvaInput().source(InputOptions(args=(str(d),)))
    src = OvaInput().source(InputOptions(args=(str(d),), extra={"skip-manifest": ""}))
    assert src.disks[0].size == 1 << 20


def test_truncated_tar(tmp_path: Path) -> None:
    ova = _tar(_dir_ova(tmp_path), tmp_path / "g.ova", ["g.ovf", "disk.img"])
    data = ova.read_bytes()
    (tmp_path / "t.ova").write_bytes(data[:len(data) // 2])
    with pytest.raises(V2VError, match="truncated"):
        open_ova(str(tmp_path / "t.ova"))


def test_garbage_is_not_an_ova(tmp_path: Path) -> None:
    (tmp_path / "x.ova").write_bytes(os.urandom(4096))
    with pytest.raises(V2VError, match="not a valid OVA"):
        open_ova(str(tmp_path / "x.ova"))


def test_duplicate_and_escaping_members(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(d / "g.ovf", arcname="../evil.ovf")
        tar.add(d / "disk.img", arcname="disk.img")
        tar.add(d / "disk.img", arcname="./disk.img")
    (tmp_path / "dup.ova").write_bytes(buf.getvalue())
    with pytest.raises(V2VError, match="twice"):
        open_ova(str(tmp_path / "dup.ova"))


@pytest.mark.parametrize("href", ["/etc/shadow", "../outside.img", "http://example.com/d.vmdk",
                                  "json:{}"])
def test_href_outside_the_ova_refused(tmp_path: Path, href: str) -> None:
    ar = DirArchive(str(_dir_ova(tmp_path)))
    with pytest.raises(V2VError, match="OVA|allowed"):
        resolve_href(ar, "", href)


def test_href_snapshot_resolution(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    for n in ("disk.img.000001", "disk.img.000002"):
        (d / n).write_bytes(b"x")
    (d / "disk.img").unlink()
    assert resolve_href(DirArchive(str(d)), "", "disk.img") == "disk.img.000002"


def test_directory_disk_symlink_outside_refused(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    (d / "g.mf").unlink()
    outside = tmp_path / "outside.img"
    _raw_disk(outside)
    (d / "disk.img").unlink()
    (d / "disk.img").symlink_to(outside)
    with pytest.raises(V2VError, match="outside"):
        OvaInput().source(InputOptions(args=(str(d),)))
    src = OvaInput().source(InputOptions(args=(str(d),), allow_external_files=True))
    assert src.disks[0].location == str(d / "disk.img")


def test_descriptor_vmdk_in_tar_refused(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    (d / "disk.img").write_text('# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\n'
                                'RW 2048 FLAT "/etc/shadow" 0\n')
    (d / "g.mf").unlink()
    with pytest.raises(V2VError, match="descriptor"):
        OvaInput().source(InputOptions(args=(str(_tar(d, tmp_path / "g.ova",
                                                      ["g.ovf", "disk.img"])),)))


def test_no_ovf(tmp_path: Path) -> None:
    d = _dir_ova(tmp_path)
    (d / "g.ovf").unlink()
    with pytest.raises(V2VError, match=r"no \.ovf"):
        OvaInput().source(InputOptions(args=(str(d),)))


@settings(max_examples=int(os.environ.get("PYV2V_FUZZ_EXAMPLES", "300")) // 3, deadline=None,
          database=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_archive_bytes_is_an_ova_or_one_line_error(tmp_path: Path, data: st.DataObject
                                                       ) -> None:
    """A real small OVA cut, overwritten at a random place, or random bytes: the input
    answers with a Source or a one-line V2VError."""
    base = tmp_path / "base.ova"
    if not base.exists():  # tmp_path is shared by the examples: build the OVA once
        _tar(_dir_ova(tmp_path), base)
    raw = base.read_bytes()
    mode = data.draw(st.sampled_from(["cut", "poke", "random"]))
    if mode == "cut":
        blob = raw[:data.draw(st.integers(0, len(raw)))]
    elif mode == "poke":
        i = data.draw(st.integers(0, len(raw) - 1))
        blob = raw[:i] + data.draw(st.binary(min_size=1, max_size=64)) + raw[i + 64:]
    else:
        blob = data.draw(st.binary(max_size=4096))
    p = tmp_path / "case.ova"
    p.write_bytes(blob)
    try:
        src = OvaInput().source(InputOptions(args=(str(p),)))
    except V2VError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert src.disks
