"""`make bench` part: `v2v -i ova` and `v2v -i vmx` against Debian's `virt-v2v` on the same
VMware exports (pyv2v_harness.vmware, generated from debian12-physical), in one invocation,
printed as ratios: wall time and bytes written (-o local, same flags for both).

    python bench/vmware_bench.py [--only ova|vmx] [--dry-run]

--dry-run prints the command pairs without building fixtures or converting anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {  # name: (input mode, VMware fixture kind)
    "ova": ("ova", "ova-vmware"),
    "vmx": ("vmx", "vmx-sparse"),
}


def commands(mode: str, source: str, ours: Path, ref: Path) -> list[list[str]]:
    v2v = str(Path(sys.executable).with_name("v2v"))
    tail = ["-on", "b", "-o", "local"]
    return [[v2v, "-i", mode, source, *tail, "-os", str(ours)],
            ["virt-v2v", "-i", mode, source, *tail, "-os", str(ref)]]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.monotonic()
    res = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, check=False)
    if res.returncode:
        print(f"  ! {argv[0]} exited {res.returncode}: {res.stderr.strip().splitlines()[-1:]}")
    return time.monotonic() - start, res.returncode


def allocated(d: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in d.iterdir() if p.is_file())


def row(name: str, ours: float, ref: float, unit: str) -> None:
    ratio = ours / ref if ref else float("nan")
    print(f"  {name:<28} pyv2v {ours:>10.1f} {unit:<4} reference {ref:>10.1f} {unit:<4} "
          f"ratio {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(CASES))
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    names = [args.only] if args.only else list(CASES)
    if args.dry_run:
        for n in names:
            mode, kind = CASES[n]
            for c in commands(mode, f"<{kind}>", Path("<ours>"), Path("<ref>")):
                print(" ".join(c))
        return 0
    from pyv2v import accel
    from pyv2v_harness import vmware

    a = accel.detect()
    env = {**os.environ, **accel.libguestfs_env(a)}
    env.setdefault("LIBGUESTFS_BACKEND", "direct")
    failed = 0
    for n in names:
        mode, kind = CASES[n]
        source = str(vmware.ensure_export(kind))
        print(f"== v2v -i {mode} … -o local ({kind}, from debian12-physical) ==")
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyv2v-bench-") as tmp:
            ours, ref = Path(tmp) / "ours", Path(tmp) / "ref"
            ours.mkdir()
            ref.mkdir()
            (t1, rc1), (t2, rc2) = (timed(c, env) for c in commands(mode, source, ours, ref))
            if rc1 or rc2:
                print("  (a conversion failed: figures below are not comparable)")
                failed = 1
            row("wall time", t1, t2, "s")
            row("bytes written", allocated(ours) / 1e6, allocated(ref) / 1e6, "MB")
    return failed


if __name__ == "__main__":
    sys.exit(main())
