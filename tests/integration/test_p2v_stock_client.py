"""Interop: Debian's stock virt-p2v 1.42.3 drives our `v2v`, installed as `virt-v2v`, over ssh.

The stock client (package `virt-p2v`, shipped as virt-p2v.xz: decompressed into a temp dir here)
runs non-interactively from `--cmdline=…` with the debian12-physical fixture as its "physical"
disk (`p2v.disks=/abs/path`): it serves the image with `nbdkit -r`, tunnels it with `ssh -R`
to a private sshd on 127.0.0.1 and runs the wrapper there.  Two things make that loopback
server honest for the stock client:

- The stock client logs in with an interactive login shell, whose /etc/profile resets PATH; so
  the sessions get a HOME of their own whose .bash_profile puts our `virt-v2v` first again
  (otherwise Debian's stock virt-v2v would silently do the conversion).
- The stock client passes `StrictHostKeyChecking=no` and would write root's ~/.ssh/known_hosts;
  `ssh`/`scp` wrappers first on its PATH put `UserKnownHostsFile=<pinned key>` and
  `StrictHostKeyChecking=yes` before its options (ssh keeps the first value), so the server's
  host key is verified and nothing outside the test's temp dir is written.

One conversion per session (minutes under TCG), several tests looking at it.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from p2v_fixtures import start_sshd, stop_sshd

from pyv2v import accel
from pyv2v_harness import loopback

pytestmark = pytest.mark.slow

STOCK_XZ = Path("/usr/lib/x86_64-linux-gnu/virt-p2v/virt-p2v.xz")
NAME = "stockp2v"
REMOTE_FILES = ("time", "name", "physical.xml", "virt-v2v-wrapper.sh", "status", "environment",
                "v2v-version", "virt-v2v-conversion-log.txt", "dmesg", "lscpu", "lspci",
                "lsscsi", "lsusb", "p2v-version")
TIMEOUT = 1800


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def stock_virt_p2v(dest: Path) -> Path:
    """The stock binary, decompressed into dest (skip if the package or its libraries lack)."""
    if not STOCK_XZ.exists():
        pytest.skip("Debian's virt-p2v is not installed (apt-get install virt-p2v)")
    exe = dest / "virt-p2v"
    exe.write_bytes(lzma.decompress(STOCK_XZ.read_bytes()))
    exe.chmod(0o755)
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"the stock virt-p2v does not run here: {r.stderr.strip()[-200:]}")
    return exe


def ssh_wrappers(d: Path, known_hosts: Path) -> Path:
    """A bin dir whose ssh/scp pin the host key file and check it (first -o value wins)."""
    d.mkdir()
    for prog in ("ssh", "scp"):
        (d / prog).write_text(f"#!/bin/sh\nexec /usr/bin/{prog} -o UserKnownHostsFile={known_hosts}"
                              " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
                              ' -o UpdateHostKeys=no "$@"\n')
        (d / prog).chmod(0o755)
    return d


def nbdkit_descendants(root: int) -> set[int]:
    """PIDs of nbdkit processes below root (from /proc)."""
    parent: dict[int, int] = {}
    comm: dict[int, str] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                parent[int(p.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                comm[int(p.name)] = stat.split("(", 1)[1].rsplit(")", 1)[0]
            except (OSError, ValueError, IndexError):
                pass
    found, todo = set(), [root]
    while todo:
        cur = todo.pop()
        kids = [pid for pid, ppid in parent.items() if ppid == cur and pid not in found]
        found.update(kids)
        todo.extend(kids)
    return {p for p in found if comm.get(p) == "nbdkit"}


def running(pid: int) -> bool:
    """Alive and not a zombie (this machine's init may be slow to reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class StockRun:
    rc: int
    stdout: str
    stderr: str
    outdir: Path
    remote_dir: Path | None
    seconds: float
    sha_before: str
    sha_after: str
    server_bin: Path
    nbdkits: set[int] = field(default_factory=set)


@pytest.fixture(scope="session")
def stock_client(debian12_physical: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[StockRun]:
    tmp = tmp_path_factory.mktemp("p2v-stock-client")
    tmp.chmod(0o755)
    exe = stock_virt_p2v(tmp)
    server_bin = loopback.v2v_bin_dir(tmp / "server-bin")
    path = [str(server_bin)] + loopback.DEFAULT_PATH
    env = {"LIBGUESTFS_BACKEND": "direct", **accel.libguestfs_env()}
    sshd = start_sshd(fake_version=None, path=path, env=env)
    old_ids = set(Path("/tmp").glob("id.*"))
    try:
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {' '.join(sshd.host_key)}\n")
        wrappers = ssh_wrappers(tmp / "client-bin", known_hosts)
        outdir = tmp / "out"
        outdir.mkdir()
        cmdline = (f"p2v.server={sshd.host} p2v.port={sshd.port} p2v.username=root "
                   f"p2v.identity=file://{sshd.user_key} p2v.name={NAME} "
                   f"p2v.disks={debian12_physical} p2v.vcpu.cores=2 p2v.memory=2G "
                   f"p2v.o=local p2v.os={outdir} p2v.post=true p2v.fail=true")
        before = sha256(debian12_physical)
        client_env = {**os.environ, "PATH": f"{wrappers}:{os.environ.get('PATH', '')}"}
        nbdkits: set[int] = set()
        with open(tmp / "stdout", "w") as out, open(tmp / "stderr", "w") as err:
            t0 = time.monotonic()
            proc = subprocess.Popen([str(exe), "-v", f"--cmdline={cmdline}"], cwd=tmp,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=client_env)
            while proc.poll() is None:
                nbdkits |= nbdkit_descendants(proc.pid)
                if time.monotonic() - t0 > TIMEOUT:
                    proc.kill()
                time.sleep(1)
            seconds = time.monotonic() - t0
        stdout = (tmp / "stdout").read_text(errors="replace")
        m = re.search(r"remote log directory location: (\S+)", stdout)
        yield StockRun(proc.returncode, stdout, (tmp / "stderr").read_text(errors="replace"),
                       outdir, Path(m.group(1)) if m else None, seconds, before,
                       sha256(debian12_physical), server_bin, nbdkits)
    finally:
        stop_sshd(sshd)
        key = sshd.user_key.read_bytes() if sshd.user_key.exists() else None
        for f in set(Path("/tmp").glob("id.*")) - old_ids:  # the stock client's key copies
            if key is None or f.read_bytes() == key:
                f.unlink(missing_ok=True)


def test_stock_client_conversion_completes(stock_client: StockRun) -> None:
    r = stock_client
    assert r.rc == 0, f"virt-p2v exit {r.rc}\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert "Conversion finished successfully" in r.stdout
    assert "Copying disk 1/1" in r.stdout
    print(f"stock virt-p2v → our v2v: {r.seconds:.0f} s")


def test_our_v2v_did_the_conversion(stock_client: StockRun) -> None:
    rdir = stock_client.remote_dir
    assert rdir is not None, stock_client.stdout[-2000:]
    assert "pyv2v" in (rdir / "v2v-version").read_text()
    env = dict(ln.split("=", 1) for ln in (rdir / "environment").read_text().splitlines()
               if "=" in ln)
    assert env["PATH"].split(":")[0] == str(stock_client.server_bin)
    assert env.get("LIBGUESTFS_BACKEND") == "direct"
    assert "remote virt-v2v version: 2.2.0 (pyv2v" in stock_client.stderr


def test_output_written_and_valid(stock_client: StockRun) -> None:
    disk, xml = stock_client.outdir / f"{NAME}-sda", stock_client.outdir / f"{NAME}.xml"
    assert disk.exists() and xml.exists(), sorted(p.name for p in stock_client.outdir.iterdir())
    text = xml.read_text()
    assert f"<name>{NAME}</name>" in text and 'bus="virtio"' in text
    subprocess.run(["virt-xml-validate", str(xml), "domain"], check=True, capture_output=True)
    info = subprocess.run(["qemu-img", "info", "--output=json", str(disk)], check=True,
                          capture_output=True, text=True).stdout
    assert '"virtual-size": 2147483648' in info


def test_source_unchanged(stock_client: StockRun) -> None:
    assert stock_client.sha_before == stock_client.sha_after


def test_remote_work_dir_complete(stock_client: StockRun) -> None:
    rdir = stock_client.remote_dir
    assert rdir is not None and re.fullmatch(r"/tmp/virt-p2v-\d{8}-[0-9a-z]{8}", str(rdir))
    missing = [name for name in REMOTE_FILES if not (rdir / name).exists()]
    assert not missing, missing
    assert (rdir / "status").read_text().strip() == "0"
    assert (rdir / "name").read_text().strip() == NAME
    log = (rdir / "virt-v2v-conversion-log.txt").read_text(errors="replace")
    assert "Copying disk 1/1" in log


def test_stock_nbdkit_served_and_ended(stock_client: StockRun) -> None:
    """The stock client's read-only nbdkit ran below it and is gone with it."""
    assert stock_client.nbdkits, "no nbdkit seen below virt-p2v"
    deadline = time.monotonic() + 10
    while alive := [p for p in stock_client.nbdkits if running(p)]:
        assert time.monotonic() < deadline, f"still running: {alive}"
        time.sleep(0.5)
