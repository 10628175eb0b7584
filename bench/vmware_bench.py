"""`make bench` part: `v2v -i ova` and `v2v -i vmx` against Debian's `virt-v2v` on the same
VMware exports (pyv2v_harness.vmware, generated from debian12-physical), in one invocation:
wall time and bytes written (blocks allocated in the -o local directory; same flags for both),
printed as ratios ours / stock and written to bench/results/vmware-<UTC time>.json (command,
git HEAD, load average at start, every run, per case the median of each side and the ratio).

    python bench/vmware_bench.py [--only ova|vmx] [--runs N] [--stock-runs N] [--dry-run]

A conversion takes 1.5-3 min here (TCG); runs of the two sides are interleaved so both see the
same machine.  --dry-run prints the command pairs without building fixtures or converting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CASES = {  # name: (input mode, VMware fixture kind)
    "ova": ("ova", "ova-vmware"),
    "vmx": ("vmx", "vmx-sparse"),
}


def commands(mode: str, source: str, ours: Path, ref: Path) -> dict[str, list[str]]:
    v2v = str(Path(sys.executable).with_name("v2v"))
    tail = ["-on", "b", "-o", "local"]
    return {"pyv2v": [v2v, "-i", mode, source, *tail, "-os", str(ours)],
            "stock": ["virt-v2v", "-i", mode, source, *tail, "-os", str(ref)]}


def allocated(d: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in d.iterdir() if p.is_file())


def one(side: str, argv: list[str], out: Path, env: dict[str, str]) -> dict[str, Any]:
    out.mkdir(parents=True)
    start = time.monotonic()
    res = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, check=False)
    secs = time.monotonic() - start
    rec: dict[str, Any] = {"side": side, "argv": argv, "ok": res.returncode == 0,
                           "rc": res.returncode, "seconds": round(secs, 1),
                           "written": allocated(out)}
    print(f"    {side}: exit {res.returncode}, {secs:.0f} s, {rec['written'] / 1e6:.0f} MB written")
    if res.returncode:
        rec["tail"] = "\n".join(res.stderr.strip().splitlines()[-5:])
        print("      " + rec["tail"].replace("\n", "\n      "))
    for p in out.iterdir():  # the next run starts with free space as before
        p.unlink()
    return rec


def median(runs: list[dict[str, Any]], side: str, key: str) -> dict[str, float] | None:
    vals = [float(r[key]) for r in runs if r["side"] == side and r["ok"]]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, key in (("wall_s", "seconds"), ("bytes_written", "written")):
        o, s = median(runs, "pyv2v", key), median(runs, "stock", key)
        out[metric] = {"pyv2v": o, "stock": s,
                       "ratio": round(o["median"] / s["median"], 3) if o and s and s["median"]
                       else None}
    return out


def table(summary: dict[str, Any]) -> None:
    print(f"  {'case':<6} {'metric':<18} {'pyv2v':>22} {'stock':>22} {'ratio':>6}")
    for case, res in summary.items():
        for metric, unit, scale in (("wall_s", "s", 1.0), ("bytes_written", "MB", 1e6)):
            m = res[metric]
            cells = []
            for side in ("pyv2v", "stock"):
                s = m[side]
                cells.append("none ok" if not s else f"{s['median'] / scale:.1f}" if s["n"] == 1
                             else f"{s['median'] / scale:.1f} [{s['min'] / scale:.1f}-"
                                  f"{s['max'] / scale:.1f}]x{s['n']:.0f}")
            ratio = "-" if m["ratio"] is None else f"{m['ratio']:.2f}"
            print(f"  {case:<6} {metric + ' (' + unit + ')':<18} {cells[0]:>22} {cells[1]:>22} "
                  f"{ratio:>6}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(CASES))
    ap.add_argument("--runs", type=int, default=1, help="runs of v2v per case")
    ap.add_argument("--stock-runs", type=int, default=1, help="runs of virt-v2v per case")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    names = [args.only] if args.only else list(CASES)
    if args.dry_run:
        for n in names:
            mode, kind = CASES[n]
            for c in commands(mode, f"<{kind}>", Path("<ours>"), Path("<ref>")).values():
                print(" ".join(c))
        return 0
    from pyv2v import accel
    from pyv2v_harness import vmware

    a = accel.detect()
    env = {**os.environ, **accel.libguestfs_env(a)}
    env.setdefault("LIBGUESTFS_BACKEND", "direct")
    load = os.getloadavg()[0]
    print(f"== VMware inputs: v2v vs virt-v2v, -o local; cases {names} ==")
    print(f"  load average at start: {load:.1f}; accelerator: {a.name}")
    head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True, check=False).stdout.split("\n")
    stock_version = subprocess.run(["virt-v2v", "--version"], capture_output=True, text=True,
                                   check=False).stdout.strip()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": [sys.executable, *sys.argv], "git_head": head,
        "src_uncommitted_at_start": [ln for ln in dirty if ln], "load_average_at_start": load,
        "accelerator": a.name, "stock": stock_version,
        "note": f"v2v runs per case: {args.runs}; virt-v2v: {args.stock_runs}, interleaved; "
                "bytes written = blocks allocated in the -o local directory",
        "cases": {}, "summary": {}}
    args.results.mkdir(parents=True, exist_ok=True)
    dest = args.results / f"vmware-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    failed = 0
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyv2v-bench-") as tmp:
        sources = {}
        for n in names:
            mode, kind = CASES[n]
            sources[n] = vmware.ensure_export(kind)
            report["cases"][n] = {"mode": mode, "fixture": kind, "source": str(sources[n]),
                                  "runs": []}
        for i in range(max(args.runs, args.stock_runs)):  # round by round: a cut-short bench
            for n in names:                                # still has every case
                mode, _ = CASES[n]
                runs: list[dict[str, Any]] = report["cases"][n]["runs"]
                print(f"  -- {n} round {i + 1}: -i {mode} {sources[n].name} (debian12-physical)")
                out = {s: Path(tmp) / f"{n}-{s}-{i}" for s in ("pyv2v", "stock")}
                cmds = commands(mode, str(sources[n]), out["pyv2v"], out["stock"])
                for side, limit in (("pyv2v", args.runs), ("stock", args.stock_runs)):
                    if i < limit:
                        runs.append(one(side, cmds[side], out[side], env))
                        failed |= not runs[-1]["ok"]
                        report["summary"][n] = summarize(runs)
                        dest.write_text(json.dumps(report, indent=2) + "\n")
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dest.write_text(json.dumps(report, indent=2) + "\n")
    table(report["summary"])
    print(f"  written: {dest}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
