"""`make bench`: pyv2v against the reference tools, in one invocation, printed as ratios.

1. `v2v -i disk FIXTURE -o local` vs Debian's `virt-v2v` (same flags): wall time, bytes written,
   peak RSS of the whole process tree (from wait4's rusage; the appliance's qemu included).
2. Copy throughput: our copy step (qemu-img convert from a qcow2 overlay) vs `nbdcopy` and plain
   `qemu-img convert` on the same image.
3. bench/vmware_bench.py: `-i ova` and `-i vmx` vs `virt-v2v` on VMware exports generated from
   the same fixture (wall time, bytes written).
4. If bench/p2v_bench.py exists (p2v → v2v over a loopback sshd vs stock virt-p2v → virt-v2v),
   it is run too; so is bench/transport_bench.py (issue 16: the used disk on loopback and over
   a 100 Mbit/s, 20 ms RTT link, bytes through the tunnel and wall time vs the stock pair).
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyv2v import accel
from pyv2v_harness.fixtures import ensure_image

HERE = Path(__file__).parent


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(seconds, exit code, peak RSS in KiB over the process tree) of one command."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    took = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        print(f"  ! {argv[0]} exited {rc}: {err.strip().splitlines()[-1:]}")
    return took, rc, rusage.ru_maxrss


def allocated(d: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in d.iterdir() if p.is_file())


def ensure_reference() -> None:
    if shutil.which("virt-v2v") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "virt-v2v"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def row(name: str, ours: float, ref: float, unit: str) -> None:
    ratio = ours / ref if ref else float("nan")
    print(f"  {name:<28} pyv2v {ours:>10.1f} {unit:<4} reference {ref:>10.1f} {unit:<4} "
          f"ratio {ratio:.2f}")


def bench_v2v(image: Path, work: Path, env: dict[str, str]) -> None:
    print("== v2v -i disk … -o local (debian12-physical) ==")
    ours_dir, ref_dir = work / "ours", work / "ref"
    ours_dir.mkdir()
    ref_dir.mkdir()
    v2v = str(Path(sys.executable).with_name("v2v"))
    t1, rc1, rss1 = timed([v2v, "-i", "disk", str(image), "-on", "b", "-o", "local", "-os",
                           str(ours_dir)], env)
    t2, rc2, rss2 = timed(["virt-v2v", "-i", "disk", str(image), "-on", "b", "-o", "local",
                           "-os", str(ref_dir)], env)
    if rc1 or rc2:
        print("  (a conversion failed: figures below are not comparable)")
    row("wall time", t1, t2, "s")
    row("bytes written", allocated(ours_dir) / 1e6, allocated(ref_dir) / 1e6, "MB")
    row("peak RSS (process tree)", rss1 / 1024, rss2 / 1024, "MiB")


def bench_copy(image: Path, work: Path) -> None:
    print("== copy throughput (same image, local → local) ==")
    overlay = work / "ov.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image),
                    str(overlay)], check=True)
    size = image.stat().st_size
    cases = {
        "pyv2v copy (qemu-img -W from overlay)": ["qemu-img", "convert", "-W", "-f", "qcow2",
                                                  "-O", "raw", str(overlay), str(work / "c1")],
        "nbdcopy": ["nbdcopy", str(image), str(work / "c2")],
        "qemu-img convert": ["qemu-img", "convert", "-f", "raw", "-O", "raw", str(image),
                             str(work / "c3")],
    }
    times = {}
    for name, argv in cases.items():
        subprocess.run(["sync"], check=False)
        t, _, _ = timed(argv)
        times[name] = t
    ours = times["pyv2v copy (qemu-img -W from overlay)"]
    for name in ("nbdcopy", "qemu-img convert"):
        print(f"  vs {name:<18} pyv2v {size / ours / 1e6:>8.0f} MB/s   {name} "
              f"{size / times[name] / 1e6:>8.0f} MB/s   time ratio {ours / times[name]:.2f}")


def main() -> int:
    a = accel.detect()
    print(f"accelerator: {a.name} ({a.reason})")
    env = dict(os.environ)
    env.update(accel.libguestfs_env(a))
    env.setdefault("LIBGUESTFS_BACKEND", "direct")
    ensure_reference()
    image = ensure_image("debian12-physical")
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyv2v-bench-") as tmp:
        work = Path(tmp)
        bench_v2v(image, work, env)
        bench_copy(image, work)
    rc = 0
    p2v = HERE / "p2v_bench.py"
    if p2v.exists():
        rc = subprocess.call([sys.executable, str(p2v)])
    vmware = HERE / "vmware_bench.py"   # -i ova / -i vmx vs virt-v2v on VMware exports
    if vmware.exists():
        rc = subprocess.call([sys.executable, str(vmware)]) or rc
    transport = HERE / "transport_bench.py"  # issue 16: used disk + slow link vs the stock pair
    if transport.exists():
        rc = subprocess.call([sys.executable, str(transport)]) or rc
    fleet = HERE / "fleet_bench.py"   # jobs/hour with one and two fleet workers
    if fleet.exists():
        rc = subprocess.call([sys.executable, str(fleet)]) or rc
    return rc


if __name__ == "__main__":
    sys.exit(main())
