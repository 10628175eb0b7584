"""VMware/VirtualBox-style exports generated from the cached debian12-physical guest image.

`ensure_export(kind)` returns the path a test hands to `v2v -i ova|vmx`, building it first if
needed.  Kinds (see KINDS): `ova-vmware` (tar: OVF with vmw: extensions, streamOptimized VMDK,
SHA256 manifest), `ova-vbox` (tar: VirtualBox OVF dialect, SHA1 manifest, same VMDK),
`ova-dir` (the VMware OVA unpacked into a directory), `vmx-sparse` (monolithicSparse VMDK),
`vmx-flat` (monolithicFlat: descriptor + -flat.vmdk), `vmx-2disk` (the sparse disk plus a
small blank second disk on another SCSI target).

Everything lives under $PYV2V_FIXTURE_CACHE/vmware-<key16>/ where the key hashes the source
image's stem (itself keyed by its recipe) and RECIPE_VERSION, each kind's directory also by a
hash of the templates below; built into a temporary directory
and renamed into place when complete, under a lock, like the guest images.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import time
from pathlib import Path

from pyv2v import log, process

from .fixtures import cache_dir, ensure_image
from .fixtures.builder import _locked

RECIPE_VERSION = "1"   # bump when the base VMDK conversions change
SOURCE = "debian12-physical"
KINDS = ("ova-vmware", "ova-vbox", "ova-dir", "vmx-sparse", "vmx-flat", "vmx-2disk")
NAME = "deb12vm"
MAC0 = "00:50:56:8a:5e:01"
MAC1 = "00:50:56:8a:5e:02"
BLANK_MIB = 64

OVF_VMWARE = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"
 xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
 xmlns:vmw="http://www.vmware.com/schema/ovf"
 xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:href="{disk}" ovf:id="file1" ovf:size="{disk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity_mib}" ovf:capacityAllocationUnits="byte * 2^20"
     ovf:diskId="vmdisk1" ovf:fileRef="file1"
     ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection><Info>Networks</Info><Network ovf:name="VM Network"/></NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System><vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType></System>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity>
        <vmw:CoresPerSocket ovf:required="false">2</vmw:CoresPerSocket></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>1024MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:Address>1</rasd:Address><rasd:ElementName>IDE 1</rasd:ElementName>
        <rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item ovf:required="false"><rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:ElementName>CD/DVD drive 1</rasd:ElementName><rasd:InstanceID>6</rasd:InstanceID>
        <rasd:Parent>4</rasd:Parent><rasd:ResourceType>15</rasd:ResourceType></Item>
      <Item><rasd:Address>{mac}</rasd:Address><rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType></Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="bios"/>
      <vmw:Config ovf:required="false" vmw:key="bootOptions.efiSecureBootEnabled"
       vmw:value="false"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""

OVF_VBOX = """<?xml version="1.0"?>
<Envelope ovf:version="1.0" xml:lang="en-US" xmlns="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
 xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
 xmlns:vbox="http://www.virtualbox.org/ovf/machine">
  <References><File ovf:id="file1" ovf:href="{disk}"/></References>
  <DiskSection><Info>List of the virtual disks used in the package</Info>
    <Disk ovf:capacity="{capacity}" ovf:diskId="vmdisk1" ovf:fileRef="file1"
     ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection><Info>Logical networks</Info><Network ovf:name="NAT"/></NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <OperatingSystemSection ovf:id="96"><Info>OS</Info>
      <vbox:OSType ovf:required="false">Debian_64</vbox:OSType></OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements for a virtual machine</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType></System>
      <Item><rasd:Caption>1 virtual CPU</rasd:Caption><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>768</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:Caption>sataController0</rasd:Caption>
        <rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>AHCI</rasd:ResourceSubType>
        <rasd:ResourceType>20</rasd:ResourceType></Item>
      <Item><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Caption>Ethernet adapter on 'NAT'</rasd:Caption>
        <rasd:Connection>NAT</rasd:Connection><rasd:InstanceID>4</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:Caption>disk1</rasd:Caption>
        <rasd:HostResource>/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>1</rasd:AddressOnParent><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Caption>cdrom1</rasd:Caption><rasd:InstanceID>6</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent><rasd:ResourceType>15</rasd:ResourceType></Item>
    </VirtualHardwareSection>
    <vbox:Machine ovf:required="false" version="1.16-linux"
     uuid="{{5e0b6b1e-0000-4000-8000-000000000001}}" name="{name}">
      <Hardware><Network>
        <Adapter slot="0" enabled="true" MACAddress="{mac_plain}" type="82540EM"><NAT/></Adapter>
      </Network></Hardware>
    </vbox:Machine>
  </VirtualSystem>
</Envelope>
"""

VMX = """.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "13"
displayName = "{name}"
guestOS = "debian10-64"
memsize = "1024"
numvcpus = "2"
cpuid.coresPerSocket = "1"
firmware = "bios"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
{disks}ide1:0.present = "TRUE"
ide1:0.deviceType = "cdrom-raw"
ide1:0.fileName = "/dev/cdrom"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "{mac}"
ethernet1.present = "FALSE"
ethernet1.virtualDev = "e1000"
ethernet1.address = "{mac1}"
"""

VMX_DISK = 'scsi0:{t}.present = "TRUE"\nscsi0:{t}.deviceType = "scsi-hardDisk"\n' \
           'scsi0:{t}.fileName = "{file}"\n'


def export_root() -> Path:
    image = ensure_image(SOURCE)
    key = hashlib.sha256(f"{image.stem}:{RECIPE_VERSION}".encode()).hexdigest()[:16]
    return cache_dir() / f"vmware-{key}"


def ensure_export(kind: str) -> Path:
    """The path to pass to v2v for `kind` (an .ova, a directory, or a .vmx), built if needed."""
    if kind not in KINDS:
        raise ValueError(f"unknown VMware fixture kind {kind!r} (known: {', '.join(KINDS)})")
    root = export_root()
    final = root / f"{kind}-{TEMPLATES_KEY}"
    if not final.exists():
        root.mkdir(parents=True, exist_ok=True)
        with _locked(root / "build.lock", f"VMware fixture {kind}"):
            if not final.exists():
                tmp = root / f"{final.name}.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                start = time.monotonic()
                tmp.mkdir()
                BUILDERS[kind](root, tmp)
                for f in tmp.iterdir():  # tests link these: keep them from being edited
                    f.chmod(0o444)
                os.replace(tmp, final)
                log.message(f"Built VMware fixture {kind} in {time.monotonic() - start:.0f} s")
    return final / ENTRY[kind]


def _convert(root: Path, subformat: str) -> Path:
    """The source image converted once to a VMDK of `subformat` (shared by several kinds)."""
    out = root / f"base-{subformat}"
    if not out.exists():
        tmp = root / f"base-{subformat}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        process.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                     f"subformat={subformat}", str(ensure_image(SOURCE)),
                     str(tmp / "disk.vmdk")], timeout=1800)
        os.replace(tmp, out)
    return out


def _capacity() -> int:
    return ensure_image(SOURCE).stat().st_size


def _sha(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def _ova_files(root: Path, out: Path, vbox: bool) -> list[Path]:
    """Write the OVF, link the disk and write the manifest into `out`; the files in tar order."""
    disk = out / f"{NAME}-disk1.vmdk"
    os.link(_convert(root, "streamOptimized") / "disk.vmdk", disk)
    ovf = out / f"{NAME}.ovf"
    if vbox:
        ovf.write_text(OVF_VBOX.format(disk=disk.name, capacity=_capacity(), name=NAME,
                                       mac_plain=MAC1.replace(":", "").upper()))
        algo, fmt = "sha1", "SHA1 ({}) = {}\n"
    else:
        ovf.write_text(OVF_VMWARE.format(disk=disk.name, disk_size=disk.stat().st_size,
                                         capacity_mib=_capacity() // 2**20, name=NAME,
                                         mac=MAC0))
        algo, fmt = "sha256", "SHA256({})= {}\n"
    mf = out / f"{NAME}.mf"
    mf.write_text("".join(fmt.format(p.name, _sha(p, algo)) for p in (ovf, disk)))
    return [ovf, mf, disk]


def _build_ova(root: Path, tmp: Path, vbox: bool) -> None:
    parts = tmp / "parts"
    parts.mkdir()
    files = _ova_files(root, parts, vbox)
    with tarfile.open(tmp / f"{NAME}.ova", "w", format=tarfile.USTAR_FORMAT) as tar:
        for f in files:   # the OVF first, as VMware's tools insist
            tar.add(f, arcname=f.name)
    shutil.rmtree(parts)


def _build_dir(root: Path, tmp: Path) -> None:
    _ova_files(root, tmp, vbox=False)


def _write_vmx(tmp: Path, disks: list[str]) -> None:
    text = VMX.format(name=NAME, mac=MAC0, mac1=MAC1,
                      disks="".join(VMX_DISK.format(t=t, file=f) for t, f in
                                    zip((0, 1), disks, strict=False)))
    (tmp / f"{NAME}.vmx").write_text(text)


def _build_vmx_sparse(root: Path, tmp: Path) -> None:
    os.link(_convert(root, "monolithicSparse") / "disk.vmdk", tmp / f"{NAME}.vmdk")
    _write_vmx(tmp, [f"{NAME}.vmdk"])


def _build_vmx_flat(root: Path, tmp: Path) -> None:
    base = _convert(root, "monolithicFlat")
    os.link(base / "disk-flat.vmdk", tmp / f"{NAME}-flat.vmdk")
    desc = (base / "disk.vmdk").read_text().replace('"disk-flat.vmdk"', f'"{NAME}-flat.vmdk"')
    (tmp / f"{NAME}.vmdk").write_text(desc)
    _write_vmx(tmp, [f"{NAME}.vmdk"])


def _build_vmx_2disk(root: Path, tmp: Path) -> None:
    os.link(_convert(root, "monolithicSparse") / "disk.vmdk", tmp / f"{NAME}.vmdk")
    process.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse",
                 str(tmp / f"{NAME}_1.vmdk"), f"{BLANK_MIB}M"])
    _write_vmx(tmp, [f"{NAME}.vmdk", f"{NAME}_1.vmdk"])


BUILDERS = {
    "ova-vmware": lambda root, tmp: _build_ova(root, tmp, vbox=False),
    "ova-vbox": lambda root, tmp: _build_ova(root, tmp, vbox=True),
    "ova-dir": _build_dir,
    "vmx-sparse": _build_vmx_sparse,
    "vmx-flat": _build_vmx_flat,
    "vmx-2disk": _build_vmx_2disk,
}
# Kinds are keyed by the templates too (the converted base VMDKs only by the source image).
TEMPLATES_KEY = hashlib.sha256((OVF_VMWARE + OVF_VBOX + VMX + VMX_DISK).encode()).hexdigest()[:8]
ENTRY = {"ova-vmware": f"{NAME}.ova", "ova-vbox": f"{NAME}.ova", "ova-dir": "",
         "vmx-sparse": f"{NAME}.vmx", "vmx-flat": f"{NAME}.vmx", "vmx-2disk": f"{NAME}.vmx"}


def main() -> None:
    """`python -m pyv2v_harness.vmware KIND…`: build and print the paths."""
    import sys

    for kind in sys.argv[1:] or KINDS:
        print(ensure_export(kind))


if __name__ == "__main__":
    main()
