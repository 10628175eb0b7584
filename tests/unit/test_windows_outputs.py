"""A source's vTPM reaches every output, and the video model follows the guest's drivers.

The TPM is read from the source metadata (VMX ``vtpm.present``, an OVF's ``vmware.vtpm`` item or
VirtualBox ``<TrustedPlatformModule>``, a libvirt ``<tpm>``) and written as libvirt's
``<tpm model='tpm-crb'>`` with a swtpm 2.0 backend (-o local/libvirt, validated with
virt-xml-validate), KubeVirt's ``tpm: {}``; -o qemu adds none (as the reference) and says so.
Video: QXL where the converter installed the QXL driver, else VGA (XML and qemu argv).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from pyv2v.libvirt_xml import parse
from pyv2v.libvirt_xml.domain import DomainXML
from pyv2v.v2v.inputs.base import InputOptions
from pyv2v.v2v.inputs.libvirtxml import source_from_domain
from pyv2v.v2v.inputs.ovf import parse_ovf
from pyv2v.v2v.inputs.vmxfile import machine_from_vmx, parse_vmx_text
from pyv2v.v2v.outputs import OutputOptions, get
from pyv2v.v2v.outputs.domain_xml import build_domain
from pyv2v.v2v.outputs.kubevirt import manifest
from pyv2v.v2v.outputs.qemu import qemu_argv
from pyv2v.v2v.types import GuestCaps, Source, SourceDisk, TargetDisk, TargetMeta, TargetNicPlan

from .test_v2v_ovf import VBOX, VMWARE

VTPM_ITEM = """  <Item ovf:required="false"><rasd:ElementName>Virtual TPM</rasd:ElementName>
   <rasd:InstanceID>99</rasd:InstanceID><rasd:ResourceSubType>vmware.vtpm</rasd:ResourceSubType>
   <rasd:ResourceType>1</rasd:ResourceType></Item>
 </VirtualHardwareSection>"""


def test_vmx_vtpm() -> None:
    base = 'scsi0:0.present = "TRUE"\nscsi0:0.fileName = "a.vmdk"\nfirmware = "efi"\n'
    assert machine_from_vmx(parse_vmx_text(base + 'vtpm.present = "TRUE"\n')).tpm
    assert not machine_from_vmx(parse_vmx_text(base + 'vtpm.present = "FALSE"\n')).tpm
    assert not machine_from_vmx(parse_vmx_text(base)).tpm


def test_ovf_vtpm() -> None:
    assert not parse_ovf(VMWARE).tpm and not parse_ovf(VBOX).tpm
    assert parse_ovf(VMWARE.replace(" </VirtualHardwareSection>", VTPM_ITEM, 1)).tpm
    vbox = VBOX.replace('<Firmware type="EFI"/>',
                        '<Firmware type="EFI"/><TrustedPlatformModule type="v2_0"/>')
    assert parse_ovf(vbox).tpm
    assert not parse_ovf(vbox.replace('type="v2_0"', 'type="None"')).tpm


@pytest.mark.parametrize("tpm", [True, False])
def test_libvirt_xml_tpm(tmp_path: Path, tpm: bool) -> None:
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(1 << 20))
    dev = ("<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"
           if tpm else "")
    xml = (f"<domain type='kvm'><name>w</name><memory unit='GiB'>1</memory><devices>"
           f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
           f"<source file='{disk}'/><target dev='sda' bus='sata'/></disk>{dev}</devices>"
           "</domain>")
    src = source_from_domain(parse(xml), InputOptions(args=("x",)), "x.xml", str(tmp_path))
    assert src.tpm is tpm


def meta(*, src_tpm: bool = False, caps_tpm: bool = False, video: str = "vga") -> TargetMeta:
    src = Source(name="w", hypervisor="vmware", memory=1 << 30, vcpus=2,
                 disks=(SourceDisk(0, "/in/w.img", "raw"),), firmware="uefi", tpm=src_tpm)
    caps = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video=video, machine="q35",
                     arch="x86_64", firmware="uefi", target_devs=("vda",), hyperv=True,
                     clock="localtime", tpm=caps_tpm)
    return TargetMeta("w", src, None, caps, (TargetDisk("/out/w-sda", "raw", "vda", 1 << 30),),
                      (TargetNicPlan("52:54:00:12:34:56", None, "default"),))


def validate(tmp_path: Path, xml: str) -> None:
    p = tmp_path / "d.xml"
    p.write_text(xml)
    res = subprocess.run(["virt-xml-validate", str(p), "domain"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr + xml


@pytest.mark.parametrize("src_tpm,caps_tpm", [(True, False), (False, True), (False, False)])
def test_tpm_in_every_output(tmp_path: Path, src_tpm: bool, caps_tpm: bool) -> None:
    m = meta(src_tpm=src_tpm, caps_tpm=caps_tpm)
    xml = build_domain(m)
    validate(tmp_path, xml)
    tpms = DomainXML(parse(xml)).devices.tpms
    want = src_tpm or caps_tpm
    assert [(t.model, t.backend_type, t.backend_version) for t in tpms] == (
        [("tpm-crb", "emulator", "2.0")] if want else [])
    devices = manifest(m, ["/out/w-sda"])["spec"]["template"]["spec"]["domain"]["devices"]
    assert ("tpm" in devices) is want and devices.get("tpm", {}) == {}
    assert not any("tpm" in a for a in qemu_argv(m, []))  # -o qemu: none (warned)


@pytest.mark.parametrize("video,xml_model,qemu_dev", [("qxl", ("qxl", 65536, None), "qxl-vga"),
                                                      ("vga", ("vga", None, 16384), "VGA")])
def test_video_model(tmp_path: Path, video: str, xml_model: tuple[str, int | None, int | None],
                     qemu_dev: str) -> None:
    m = meta(video=video)
    xml = build_domain(m)
    validate(tmp_path, xml)
    (v,) = DomainXML(parse(xml)).devices.videos
    assert (v.model, v.ram, v.vram) == xml_model and v.heads == 1
    argv = qemu_argv(replace(m), [])
    assert qemu_dev in argv and ({"VGA", "qxl-vga"} - {qemu_dev}).isdisjoint(argv)


@pytest.mark.parametrize("tpm", [True, False])
def test_qemu_script_says_it_has_no_tpm(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        tpm: bool) -> None:
    out = get("qemu", OutputOptions(storage=str(tmp_path)))
    out.precheck()
    m = meta(src_tpm=tpm)
    target = out.setup("w", m.source)
    m = TargetMeta(m.name, m.source, m.inspect, m.caps,
                   (TargetDisk(str(tmp_path / "w-sda"), "raw", "vda", 1),), m.nics)
    capsys.readouterr()
    out.finalize(m, target)
    target.commit()
    script = (tmp_path / "w.sh").read_text()
    err = capsys.readouterr().err
    assert ("had a TPM: the -o qemu script does not emulate one" in err) is tpm
    assert ("# The source had a TPM" in script) is tpm and "tpm" not in script.split("exec", 1)[1]
