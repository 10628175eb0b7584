"""Issue 16's transport benchmark (run by `make bench`): pyv2v p2v → v2v vs the stock
virt-p2v → virt-v2v pair on a disk in service, on loopback and over a slow link.

Source: the used-disk fixture (pyv2v_harness.fixtures.used: debian12-physical whose free space
holds old random data, every block non-zero); `--slow-fixture plain` uses debian12-physical
itself on the slow link.  Both pairs convert with `-o local` through a private sshd (the same
client flags as bench/p2v_bench.py) and, in each case, reach it the same way:

- used: through pyv2v_harness.slowlink.counting_proxy on 127.0.0.1 (no delay, no shaping);
- slow: from a network namespace over a veth pair shaped with tc tbf (100 Mbit/s) to the
  slowlink proxy, which adds 20 ms RTT.

Bytes through the tunnel are counted by that proxy in front of the sshd: everything the client's
ssh connections carried to the server (control + data, encrypted), the same count for both
pairs.  Also recorded: what the client's nbdkit processes read from the source (rchar, as
bench/p2v_bench.py) and wall time of the client.  Ratios are ours / stock against the issue's
goals (used disk: bytes <= 1.0; slow link: wall time <= 0.5), printed as a table and written to
bench/results/transport-<UTC time>.json.  `--runs N` repeats our side (a few minutes each) for a
spread; the stock pair (~6 min on loopback here) runs `--stock-runs` times, 1 by default.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from p2v_bench import Result, Route, Via, ours, reference

from pyv2v import accel
from pyv2v_harness.fixtures import ensure_image
from pyv2v_harness.fixtures.used import ensure_used
from pyv2v_harness.slowlink import counting_proxy, slow_link

HERE = Path(__file__).parent
RATE_MBIT = 100
RTT_MS = 20
GOALS = {"used": ("bytes", 1.0), "slow": ("wall", 0.5)}


@contextmanager
def via_counting(port: int) -> Iterator[Route]:
    with counting_proxy(port) as p:
        yield Route(p.host, p.port, counts=lambda: (p.up, p.down))


@contextmanager
def via_slow(port: int) -> Iterator[Route]:
    with slow_link(port, rate_mbit=RATE_MBIT, rtt_ms=RTT_MS) as link:
        yield Route(link.host, link.port, wrap=link.wrap,
                    counts=lambda: (link.proxy.up, link.proxy.down))


def one(label: str, fn: object, image: Path, work: Path, via: Via) -> dict[str, object]:
    work.mkdir(parents=True)
    rec: dict[str, object] = {"pair": label}
    try:
        r: Result = fn(image, work, via)  # type: ignore[operator]
    except Exception as e:  # noqa: BLE001 — the bench goes on
        rec.update(ok=False, error=f"{type(e).__name__}: {e}")
        print(f"    ! {label}: {rec['error']}")
        return rec
    rec.update(ok=r.rc == 0, rc=r.rc, seconds=round(r.seconds, 1), tunnel_up=r.link_up,
               tunnel_down=r.link_down, nbdkit_read=r.tunnel_bytes, written=r.written)
    print(f"    {label}: exit {r.rc}, {r.seconds:.0f} s, {r.link_up / 1e6:.0f} MB up the tunnel, "
          f"{r.tunnel_bytes / 1e6:.0f} MB read by nbdkit")
    if r.rc != 0:
        rec["tail"] = r.tail
        print("      " + r.tail.replace("\n", "\n      "))
    return rec


def spread(runs: list[dict[str, object]], key: str) -> dict[str, float] | None:
    vals = [float(r[key]) for r in runs if r.get("ok")]  # type: ignore[arg-type]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarize(case: str, runs: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for metric, key in (("wall", "seconds"), ("bytes", "tunnel_up"),
                        ("nbdkit_read", "nbdkit_read")):
        o = spread([r for r in runs if r["pair"] == "pyv2v"], key)
        s = spread([r for r in runs if r["pair"] == "stock"], key)
        out[metric] = {"pyv2v": o, "stock": s,
                       "ratio": round(o["median"] / s["median"], 3) if o and s and s["median"]
                       else None}
    metric, goal = GOALS[case]
    ratio = out[metric]["ratio"]  # type: ignore[index]
    out["goal"] = {"metric": metric, "ratio_at_most": goal,
                   "met": None if ratio is None else ratio <= goal}
    return out


def fmt(s: dict[str, float] | None, scale: float) -> str:
    if not s:
        return "none ok"  # not run, or every run failed (see runs)
    if s["n"] == 1:
        return f"{s['median'] / scale:.1f}"
    return f"{s['median'] / scale:.1f} [{s['min'] / scale:.1f}-{s['max'] / scale:.1f}]x{s['n']:.0f}"


def table(summary: dict[str, dict[str, Any]]) -> None:
    print(f"  {'case':<6} {'metric':<26} {'pyv2v':>26} {'stock':>10} {'ratio':>6}  goal")
    for case, res in summary.items():
        g = res["goal"]
        for metric, unit, scale in (("wall", "s", 1), ("bytes", "MB up tunnel", 1e6),
                                    ("nbdkit_read", "MB read", 1e6)):
            m = res[metric]
            goal = ""
            if g["metric"] == metric:
                met = {True: "met", False: "NOT met", None: "n/a"}[g["met"]]
                goal = f"<= {g['ratio_at_most']} {met}"
            ratio = "-" if m["ratio"] is None else f"{m['ratio']:.2f}"
            print(f"  {case:<6} {metric + ' (' + unit + ')':<26} {fmt(m['pyv2v'], scale):>26} "
                  f"{fmt(m['stock'], scale):>10} {ratio:>6}  {goal}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="used,slow", help="comma-separated: used, slow")
    ap.add_argument("--runs", type=int, default=1, help="runs of our pair per case")
    ap.add_argument("--stock-runs", type=int, default=1, help="runs of the stock pair per case")
    ap.add_argument("--slow-fixture", choices=("used", "plain"), default="used")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    print(f"== transport (issue 16): p2v → v2v vs stock virt-p2v → virt-v2v; cases {cases} ==")
    load = os.getloadavg()[0]
    print(f"  load average at start: {load:.1f}; accelerator: {accel.detect().name}")
    if os.geteuid() != 0:
        print("  ! needs root (loop devices, ip netns, tc): skipped")
        return 0
    used = ensure_used("debian12-physical")
    images = {"used": used,
              "slow": used if args.slow_fixture == "used" else ensure_image("debian12-physical")}
    vias: dict[str, Via] = {"used": via_counting, "slow": via_slow}
    head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "git_head": head,
        "load_average_at_start": load, "link": {"rate_mbit": RATE_MBIT, "rtt_ms": RTT_MS},
        "images": {c: images[c].name for c in cases}, "runs": {}, "summary": {},
        "note": f"pyv2v runs per case: {args.runs}; stock: {args.stock_runs} "
                "(a stock p2v→v2v run takes ~6 min here)"}
    summary: dict[str, dict[str, Any]] = {}
    report["summary"] = summary
    args.results.mkdir(parents=True, exist_ok=True)
    dest = args.results / f"transport-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="pyv2v-transport-bench-") as tmp:
        for case in cases:
            print(f"  -- {case}: {images[case].name}")
            runs: list[dict[str, object]] = []
            report["runs"][case] = runs  # type: ignore[index]
            for i in range(max(args.runs, args.stock_runs)):  # interleaved: same conditions
                if i < args.runs:
                    runs.append(one("pyv2v", ours, images[case], Path(tmp) / f"{case}-o{i}",
                                    vias[case]))
                    save(dest, report, case, runs)
                if i < args.stock_runs:
                    runs.append(one("stock", reference, images[case],
                                    Path(tmp) / f"{case}-s{i}", vias[case]))
                    save(dest, report, case, runs)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    dest.write_text(json.dumps(report, indent=2) + "\n")
    table(summary)
    print(f"  written: {dest}")
    return 0


def save(dest: Path, report: dict[str, Any], case: str, runs: list[dict[str, object]]) -> None:
    """After every run: what is done so far survives an interrupted bench."""
    report["summary"][case] = summarize(case, runs)
    dest.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
