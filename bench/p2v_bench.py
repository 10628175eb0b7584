"""p2v → v2v over a loopback sshd vs the stock virt-p2v → virt-v2v pair (run by `make bench`).

Both pairs convert the debian12-physical fixture, standing in for the physical disk, with
`-o local` into temp dirs, through a private sshd on 127.0.0.1 (pyv2v_harness.loopback):

- pyv2v:     `.venv/bin/p2v --disk IMAGE --hostkey SHA256:…` → our `v2v` as `virt-v2v`
- reference: Debian's virt-p2v 1.42.3 (`--cmdline=… p2v.disks=IMAGE`) → Debian's virt-v2v

Printed as ratios (pyv2v / reference): wall time of the client, bytes through the tunnel
(what the client's nbdkit read from the source: rchar in /proc/PID/io of every nbdkit below the
client, sampled until it exits) and bytes written to the output dir.  Each pair runs once; a
failure prints a line and the bench goes on.  The stock client's ssh/scp get our known_hosts
with the pinned host key first (it passes StrictHostKeyChecking=no).
"""

from __future__ import annotations

import lzma
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import allocated, row
from pyv2v import accel
from pyv2v_harness import loopback
from pyv2v_harness.fixtures import ensure_image

STOCK_XZ = Path("/usr/lib/x86_64-linux-gnu/virt-p2v/virt-p2v.xz")
TIMEOUT = 1800.0
NAME = "benchp2v"


@dataclass
class Result:
    seconds: float
    rc: int
    tunnel_bytes: int
    written: int
    tail: str = ""
    link_up: int = 0     # bytes client → sshd counted by the route's proxy (0: no proxy)
    link_down: int = 0


@dataclass
class Route:
    """How a client reaches the server: the address to give it and a wrapper for its argv
    (bench/transport_bench.py routes through pyv2v_harness.slowlink's counting proxy)."""
    host: str
    port: int
    wrap: Callable[[list[str]], list[str]] = field(default=lambda argv: argv)
    counts: Callable[[], tuple[int, int]] = field(default=lambda: (0, 0))


Via = Callable[[int], AbstractContextManager[Route]]


@contextmanager
def direct(port: int) -> Iterator[Route]:
    yield Route("127.0.0.1", port)


def processes() -> dict[int, tuple[int, str]]:
    """pid → (ppid, comm) from /proc."""
    out: dict[int, tuple[int, str]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                comm = stat.split("(", 1)[1].rsplit(")", 1)[0]
                out[int(p.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), comm)
            except (OSError, ValueError, IndexError):
                pass
    return out


def nbdkits_below(root: int) -> list[int]:
    procs = processes()
    found, todo = set(), [root]
    while todo:
        cur = todo.pop()
        kids = [pid for pid, (ppid, _) in procs.items() if ppid == cur and pid not in found]
        found.update(kids)
        todo.extend(kids)
    return [p for p in found if procs[p][1] == "nbdkit"]


def rchar(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_client(argv: list[str], outdir: Path, log: Path, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> Result:
    """Run one client to the end, sampling its nbdkits' rchar; never raises on its failure."""
    seen: dict[int, int] = {}
    t0 = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd)
        while proc.poll() is None:
            for pid in nbdkits_below(proc.pid):
                if (n := rchar(pid)) is not None:
                    seen[pid] = max(n, seen.get(pid, 0))
            if time.monotonic() - t0 > TIMEOUT:
                proc.kill()
            time.sleep(0.5)
    took = time.monotonic() - t0
    lines = [ln for ln in log.read_text(errors="replace").splitlines()
             if ln.strip() and not ln.startswith("DEBUG:")]
    return Result(took, proc.returncode, sum(seen.values()), allocated(outdir),
                  "\n".join(lines[-8:]))


def with_counts(r: Result, route: Route) -> Result:
    r.link_up, r.link_down = route.counts()
    return r


def ours(image: Path, work: Path, via: Via = direct) -> Result:
    srv = loopback.start_conversion_server(work / "server-bin")
    try:
        out = work / "out"
        out.mkdir()
        with via(srv.port) as route:
            argv = [str(Path(sys.executable).with_name("p2v")), "--server", route.host,
                    "--port", str(route.port), "--username", "root", "--identity",
                    f"file://{srv.user_key}", "--hostkey", srv.fingerprint, "--known-hosts",
                    str(work / "known_hosts"), "--name", NAME, "--disk", str(image), "-o",
                    "local", "--os", str(out), "--cores", "1", "--memory", "1G"]
            return with_counts(run_client(route.wrap(argv), out, work / "p2v.log"), route)
    finally:
        srv.stop()


def stock_client_bin(work: Path, known_hosts: Path) -> Path:
    """Decompressed virt-p2v plus ssh/scp wrappers that check the pinned host key."""
    d = work / "client-bin"
    d.mkdir()
    (d / "virt-p2v").write_bytes(lzma.decompress(STOCK_XZ.read_bytes()))
    (d / "virt-p2v").chmod(0o755)
    for prog in ("ssh", "scp"):
        (d / prog).write_text(f"#!/bin/sh\nexec /usr/bin/{prog} -o UserKnownHostsFile={known_hosts}"
                              " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
                              ' -o UpdateHostKeys=no "$@"\n')
        (d / prog).chmod(0o755)
    return d


def reference(image: Path, work: Path, via: Via = direct) -> Result:
    if not STOCK_XZ.exists():
        raise RuntimeError("Debian's virt-p2v is not installed (apt-get install virt-p2v)")
    srv = loopback.start(env={"LIBGUESTFS_BACKEND": "direct", **accel.libguestfs_env()})
    old_ids = set(Path("/tmp").glob("id.*"))
    try:
        with via(srv.port) as route:
            known_hosts = work / "known_hosts"
            known_hosts.write_text(f"[{route.host}]:{route.port} {' '.join(srv.host_key)}\n")
            bindir = stock_client_bin(work, known_hosts)
            out = work / "out"
            out.mkdir()
            cmdline = (f"p2v.server={route.host} p2v.port={route.port} p2v.username=root "
                       f"p2v.identity=file://{srv.user_key} p2v.name={NAME} p2v.disks={image} "
                       f"p2v.vcpu.cores=1 p2v.memory=1G p2v.o=local p2v.os={out} "
                       "p2v.post=true p2v.fail=true")
            env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}"}
            argv = route.wrap([str(bindir / "virt-p2v"), "-v", f"--cmdline={cmdline}"])
            return with_counts(run_client(argv, out, work / "virt-p2v.log", env=env, cwd=work),
                               route)
    finally:
        key = srv.user_key.read_bytes()
        srv.stop()
        for f in set(Path("/tmp").glob("id.*")) - old_ids:  # virt-p2v's copies of the key
            if f.read_bytes() == key:
                f.unlink(missing_ok=True)


def attempt(label: str, fn: Callable[[Path, Path], Result], image: Path,
            work: Path) -> Result | None:
    work.mkdir()
    try:
        r = fn(image, work)
    except Exception as e:  # noqa: BLE001 — the bench goes on
        print(f"  ! {label}: {type(e).__name__}: {e}")
        return None
    print(f"  {label}: exit {r.rc} after {r.seconds:.0f} s")
    if r.rc != 0:
        print("    " + r.tail.replace("\n", "\n    "))
        return None
    return r


def main() -> int:
    print("== p2v → v2v over a loopback sshd (debian12-physical, -o local) ==")
    print(f"  load average at start: {os.getloadavg()[0]:.1f}; accelerator: {accel.detect().name}")
    try:
        image = ensure_image("debian12-physical")
    except Exception as e:  # noqa: BLE001
        print(f"  ! no fixture image: {e}")
        return 0
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyv2v-p2v-bench-") as tmp:
        work = Path(tmp)
        mine = attempt("pyv2v p2v → pyv2v v2v", ours, image, work / "ours")
        ref = attempt("stock virt-p2v → stock virt-v2v", reference, image, work / "ref")
    if mine is None or ref is None:
        print("  (a pair failed: no ratios)")
        return 0
    row("wall time", mine.seconds, ref.seconds, "s")
    row("bytes through the tunnel", mine.tunnel_bytes / 1e6, ref.tunnel_bytes / 1e6, "MB")
    row("bytes written", mine.written / 1e6, ref.written / 1e6, "MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
