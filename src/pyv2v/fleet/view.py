"""What `status` and `report` print: plain tables (or JSON) from the job table's rows."""

from __future__ import annotations

import json
import time

from .store import counts

VERIFY_NA = "not requested"   # the job had no --verify-boot (or has not got that far)
VERIFY_PREFIX = "Boot verification: "


def _duration(j: dict[str, str], now: float) -> str:
    if not j.get("started"):
        return "-"
    end = float(j["finished"]) if j.get("finished") else now
    return f"{end - float(j['started']):.0f}s"


def detail(j: dict[str, str]) -> str:
    state = j.get("state", "")
    if state in ("failed", "cancelled"):
        return j.get("error", "")
    if state == "running":
        pct = f" {j['progress']}%" if j.get("progress") else ""
        return f"{j.get('stage', '')}{pct}"
    return j.get("stage", "") if state == "done" else ""


def origin(j: dict[str, str]) -> dict[str, object]:
    """Kind (v2v: a submitted job; p2v: a p2v client's conversion) and, for p2v, where from."""
    if j.get("kind") != "p2v":
        return {"kind": "v2v"}
    return {"kind": "p2v", "source": j.get("source") or None, "guest": j.get("guest") or None,
            "server": j.get("server") or None}


def status_rows(jobs: list[dict[str, str]]) -> list[dict[str, object]]:
    now = time.time()
    return [{"job": j["id"], **origin(j), "state": j.get("state"),
             "worker": j.get("worker") or None,
             "stage": j.get("stage") or None,
             "progress": int(j["progress"]) if j.get("progress") else None,
             "error": j.get("error") or None, "attempts": int(j.get("attempts") or 1),
             "deliveries": int(j.get("deliveries") or 0), "elapsed": _duration(j, now)}
            for j in jobs]


def status_text(jobs: list[dict[str, str]]) -> str:
    now = time.time()
    c = counts(jobs)
    lines = [" · ".join(f"{k} {v}" for k, v in c.items()),
             f"{'JOB':<24} {'KIND':<4} {'STATE':<10} {'WORKER':<22} {'TIME':>6}  STAGE / ERROR"]
    for j in jobs:
        kind = "p2v" if j.get("kind") == "p2v" else "v2v"
        src = f" (from {j.get('source')})" if kind == "p2v" else ""
        lines.append(f"{j['id']:<24} {kind:<4} {j.get('state', ''):<10} "
                     f"{j.get('worker') or '-':<22} {_duration(j, now):>6}  {detail(j)}{src}")
    return "\n".join(lines)


def report_rows(jobs: list[dict[str, str]]) -> list[dict[str, object]]:
    now = time.time()
    return [{"job": j["id"], **origin(j), "outcome": j.get("state"),
             "duration": _duration(j, now),
             "bytes_written": int(j["bytes"]) if j.get("bytes") else None,
             "worker": j.get("worker") or None, "attempts": int(j.get("attempts") or 1),
             "deliveries": int(j.get("deliveries") or 0),
             "verify_boot": j.get("verify") or VERIFY_NA, "error": j.get("error") or None}
            for j in jobs]


def report_text(jobs: list[dict[str, str]]) -> str:
    lines = [f"{'JOB':<24} {'KIND':<4} {'OUTCOME':<10} {'DURATION':>8} {'BYTES':>14}  "
             f"{'VERIFY-BOOT':<28} ERROR"]
    for r in report_rows(jobs):
        b = r["bytes_written"]
        verify = str(r["verify_boot"]).removeprefix(VERIFY_PREFIX)
        error = "" if r["error"] == r["verify_boot"] else r["error"] or ""   # said once
        lines.append(f"{r['job']:<24} {r['kind']:<4} {r['outcome']:<10} {r['duration']:>8} "
                     f"{b if b is not None else '-':>14}  {verify:<28} {error}")
    return "\n".join(lines)


def as_json(rows: list[dict[str, object]]) -> str:
    return json.dumps(rows, indent=2)
