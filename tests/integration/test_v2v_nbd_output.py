"""An output whose destinations are not files: tests/nbd_output.py (`-o nbd-test`), registered
through the real registry, writes each disk into an NBD export (nbdkit) that the test starts.

Light: the copier writes a qcow2 overlay into the export and abort zeroes it.  Heavy: a real
`v2v -i disk … -o nbd-test` conversion of the cached fixture, then the export's content is read
back (partition table as the source's, fstab rewritten to the converter's names)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nbd_output import NbdTestOutput

from pyv2v.errors import V2VError
from pyv2v.v2v import outputs
from pyv2v.v2v.copy import copy_disk
from pyv2v.v2v.outputs import OutputOptions
from pyv2v.v2v.types import Disk, Source, SourceDisk

LAUNCHER = Path(__file__).parents[1] / "nbd_output.py"
StartExport = Callable[[int], tuple[Path, str]]


@pytest.fixture
def nbd_test_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(outputs.OUTPUTS, "nbd-test", NbdTestOutput)


@pytest.fixture
def start_export(tmp_path: Path) -> Iterator[StartExport]:
    """`start_export(size)` → (backing file, URI) of a writable nbdkit export on a unix socket."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(size: int) -> tuple[Path, str]:
        n = len(procs)
        backing, sock = tmp_path / f"export{n}.raw", tmp_path / f"nbd{n}.sock"
        with open(backing, "wb") as f:
            f.truncate(size)
        procs.append(subprocess.Popen(["nbdkit", "-f", "--exit-with-parent", "-U", str(sock),
                                       "file", f"file={backing}"]))
        uri = f"nbd+unix:///?socket={sock}"
        deadline = time.monotonic() + 30
        while subprocess.run(["nbdinfo", "--size", uri], capture_output=True).returncode:
            assert time.monotonic() < deadline and procs[-1].poll() is None, "nbdkit failed"
            time.sleep(0.1)
        return backing, uri

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def test_copy_into_an_nbd_destination_and_abort(nbd_test_output: None,
                                                start_export: StartExport,
                                                tmp_path: Path) -> None:
    size = 8 * 1024**2
    backing, uri = start_export(size)
    data = tmp_path / "data.raw"
    data.write_bytes(os.urandom(size))
    overlay = tmp_path / "ov.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(data),
                    str(overlay)], check=True)
    src = Source("g", "physical", 1024**3, 1, (SourceDisk(0, str(data), "raw", size=size),))
    target = outputs.get("nbd-test", OutputOptions(storage=uri)).setup("g", src)
    dest = target.disks[0]
    assert dest.space_dir() is None and dest.location == uri

    seen: list[float] = []
    copy_disk(Disk(src.disks[0], str(overlay), dest), lambda i, f: seen.append(f))
    assert seen[-1] == 1.0 and backing.read_bytes() == data.read_bytes()
    target.abort()
    assert backing.read_bytes() == bytes(size)  # nothing that looks like a disk is left


def test_too_small_export_refused(nbd_test_output: None, start_export: StartExport) -> None:
    _, uri = start_export(1024**2)
    src = Source("g", "physical", 1024**3, 1, (SourceDisk(0, "/x", "raw", size=2 * 1024**2),))
    with pytest.raises(V2VError, match="smaller than source disk 0"):
        outputs.get("nbd-test", OutputOptions(storage=uri)).setup("g", src)


@pytest.mark.slow
def test_real_conversion_into_nbd(debian12_physical: Path, start_export: StartExport) -> None:
    size = os.stat(debian12_physical).st_size
    backing, uri = start_export(size)
    res = subprocess.run([sys.executable, str(LAUNCHER), "-i", "disk", str(debian12_physical),
                          "-on", "nbdguest", "-o", "nbd-test", "-os", uri],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "Copying disk 1/1" in res.stdout and "Traceback" not in res.stderr

    # The data arrived: same partition table as the source (bytes 446-512 of the MBR) …
    with open(debian12_physical, "rb") as s, open(backing, "rb") as o:
        assert s.read(512)[446:] == o.read(512)[446:]
    # … and the converted guest, with the names the converter wrote (read-only, appliance).
    fstab = subprocess.run(["guestfish", "--ro", "--format=raw", "-a", str(backing), "-i",
                            "cat", "/etc/fstab"], capture_output=True, text=True, check=True,
                           timeout=600).stdout
    assert "/dev/vda" in fstab and "/dev/sda" not in fstab, fstab
