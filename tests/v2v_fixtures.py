"""Session-scoped v2v conversions of the guest fixtures: convert once, assert many things.

Each fixture runs the installed `v2v` command for real (libguestfs appliance, qemu-img, nbdkit)
and records what a test needs: exit code, output, wall time, the output directory and the
source's sha256 before and after.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from v2v_helpers import run_v2v

from pyv2v_harness.fixtures.builder import sha256_file as sha256


def used_bytes(image: Path) -> int:
    """Bytes the guest's filesystems really use, from virt-df (the real appliance)."""
    res = subprocess.run(["virt-df", "--csv", "--format=raw", "-a", str(image)],
                         capture_output=True, text=True, check=True, timeout=600)
    total = 0
    for line in res.stdout.splitlines()[1:]:
        cols = line.split(",")
        total += int(cols[3]) * 1024  # "1K-blocks used"
    return total


@dataclass
class Conversion:
    source: Path
    outdir: Path
    args: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float
    sha_before: str
    sha_after: str


def convert(source: Path, outdir: Path, *args: str) -> Conversion:
    before = sha256(source)
    start = time.monotonic()
    res = run_v2v(*args, timeout=1800)
    took = time.monotonic() - start
    print(f"\nv2v {' '.join(args)}: rc={res.rc if hasattr(res, 'rc') else res.returncode} "
          f"in {took:.0f} s\n{res.stdout}\n{res.stderr[-3000:]}")
    return Conversion(source, outdir, list(args), res.returncode, res.stdout, res.stderr, took,
                      before, sha256(source))


@pytest.fixture(scope="session")
def converted_local(debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Conversion:
    out = tmp_path_factory.mktemp("v2v-local")
    return convert(debian12_physical, out, "-i", "disk", str(debian12_physical), "-on", "deb12",
                   "-o", "local", "-os", str(out))


PHYSICAL_XML = """<domain type="physical">
  <name>p2vhost</name>
  <memory unit="KiB">1048576</memory><currentMemory unit="KiB">1048576</currentMemory>
  <vcpu>2</vcpu>
  <cpu match="minimum"><vendor>Intel</vendor><topology sockets="1" cores="2" threads="1"/></cpu>
  <clock offset="utc"/>
  <os><type arch="x86_64">hvm</type></os>
  <features><acpi/><apic/><pae/></features>
  <devices>
    <disk type="network" device="disk"><driver name="qemu" type="raw"/>
      <source protocol="nbd"><host name="localhost" port="PORT"/></source>
      <target dev="sda"/></disk>
    <disk type="network" device="cdrom"><driver name="qemu" type="raw"/><target dev="sr0"/></disk>
    <interface type="network"><source network="default"/><target dev="eth0"/>
      <mac address="52:54:00:5a:7e:01"/></interface>
  </devices>
</domain>
"""


@pytest.fixture(scope="session")
def converted_nbd(debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Conversion:
    """physical.xml with the fixture served read-only by nbdkit, converted to -o qemu qcow2."""
    from pyv2v import nbd

    out = tmp_path_factory.mktemp("v2v-nbd")
    server = nbd.start_nbdkit_readonly(str(debian12_physical))
    try:
        xml = out.parent / "physical.xml"
        xml.write_text(PHYSICAL_XML.replace("PORT", str(server.port)))
        c = convert(debian12_physical, out, "-i", "libvirtxml", str(xml), "--root", "first",
                    "-o", "qemu", "-of", "qcow2", "-os", str(out))
        c.nbd_bytes_read = server.bytes_read()  # type: ignore[attr-defined]
    finally:
        server.stop()
    return c


def without_efi_fallback(image: Path, workdir: Path) -> Path:
    """A qcow2 overlay of `image` whose ESP lacks \\EFI\\BOOT (a guest installed without
    --removable, the usual case): only the conversion can make fresh OVMF NVRAM boot it."""
    import guestfs

    overlay = workdir / "uefi-no-fallback.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image),
                    str(overlay)], check=True)
    g = guestfs.GuestFS(python_return_dict=True)
    g.add_drive_opts(str(overlay), format="qcow2")
    g.launch()
    root = g.inspect_os()[0]
    for mp, dev in sorted(g.inspect_get_mountpoints(root).items(), key=lambda kv: len(kv[0])):
        g.mount(dev, mp)
    g.rm_rf("/boot/efi/EFI/BOOT")
    g.umount_all()
    g.shutdown()
    g.close()
    return overlay


@pytest.fixture(scope="session")
def converted_uefi(debian12_uefi: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> Conversion:
    work = tmp_path_factory.mktemp("v2v-uefi-src")
    source = without_efi_fallback(debian12_uefi, work)
    out = tmp_path_factory.mktemp("v2v-uefi")
    sha = sha256(debian12_uefi)
    c = convert(source, out, "-i", "disk", str(source), "-on", "deb12uefi",
                "-o", "local", "-of", "qcow2", "-os", str(out))
    c.fixture_sha = (sha, sha256(debian12_uefi))  # type: ignore[attr-defined]
    return c
