"""Session-scoped v2v conversions of the guest fixtures: convert once, assert many things.

Each fixture runs the installed `v2v` command for real (libguestfs appliance, qemu-img, nbdkit)
and records what a test needs: exit code, output, wall time, the output directory and the
source's sha256 before and after.

converted_local and converted_uefi are converted once per *run*, not once per xdist worker:
`shared_result` lets the first worker that needs one convert under an flock in the run's shared
temp dir and pickle the result there; other workers wait for the lock and load it.  Their users
only read the outputs (boots use -snapshot, read-backs a qcow2 overlay), so they may run at the
same time on both workers.  converted_nbd is not shared: its boot test runs the generated
script, which writes the disk, so its users stay on one worker (tests/conftest.py groups them).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import subprocess
import time
from collections.abc import Callable
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


def shared_result(tmp_path_factory: pytest.TempPathFactory, key: str,
                  make: Callable[[Path], Conversion]) -> Conversion:
    """`make(workdir)` once per test run, whichever xdist worker asks first (see above).  An
    exception is not cached: the next worker to ask tries again."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's directory, shared by its workers
    work, done = base / f"shared-{key}", base / f"shared-{key}.pickle"
    with open(base / f"shared-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            with open(done, "rb") as f:
                result: Conversion = pickle.load(f)
            return result
        shutil.rmtree(work, ignore_errors=True)  # a failed attempt's leftovers
        work.mkdir()
        result = make(work)
        with open(done.with_suffix(".tmp"), "wb") as f:
            pickle.dump(result, f)
        os.replace(done.with_suffix(".tmp"), done)
        return result


@pytest.fixture(scope="session")
def converted_local(debian12_physical: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Conversion:
    def make(work: Path) -> Conversion:
        out = work / "v2v-local"
        out.mkdir()
        return convert(debian12_physical, out, "-i", "disk", str(debian12_physical),
                       "-on", "deb12", "-o", "local", "-os", str(out))

    return shared_result(tmp_path_factory, "converted_local", make)


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
    def make(work: Path) -> Conversion:
        (work / "v2v-uefi-src").mkdir()
        source = without_efi_fallback(debian12_uefi, work / "v2v-uefi-src")
        out = work / "v2v-uefi"
        out.mkdir()
        sha = sha256(debian12_uefi)
        # The overlay's backing file is the cached fixture, outside its directory on purpose.
        c = convert(source, out, "-i", "disk", str(source), "--allow-external-files",
                    "-on", "deb12uefi", "-o", "local", "-of", "qcow2", "--compressed",
                    "-os", str(out))
        c.fixture_sha = (sha, sha256(debian12_uefi))  # type: ignore[attr-defined]
        return c

    return shared_result(tmp_path_factory, "converted_uefi", make)
