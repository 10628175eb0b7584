"""Fleet plans: a YAML or CSV file with one entry per source, each a v2v argument list.

YAML — a list of entries, or a mapping with `jobs:` and optional `defaults: {args: …}` (appended
to every entry's arguments, e.g. the output options every job shares):

    defaults: {args: [-o, local, -of, qcow2]}
    jobs:
      - name: web1
        args: [-i, disk, /exports/web1.img]
      - name: db1
        args: -i vmx /exports/db1/db1.vmx --root first     # a string is split like a shell

CSV — a header with `name` and `args` columns (args split like a shell; no shell runs).
Every entry is checked with v2v's own parser and plan builder at submit time, so a usage error
is a one-line error before anything is queued.  `-os` may be left out for outputs writing files
into a directory: each worker then uses its own `--output-storage`.
"""

from __future__ import annotations

import csv
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError, V2VError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
NOT_A_CONVERSION = ("--print-source", "--machine-readable", "-V", "--version", "--help", "-h")


@dataclass(frozen=True)
class JobSpec:
    name: str
    argv: list[str]


def load(path: str) -> list[JobSpec]:
    """Read and check a plan file; raises UsageError/V2VError with one line."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise V2VError(f"plan {path}: {e.strerror}") from e
    entries = _csv(text, path) if p.suffix.lower() == ".csv" else _yaml(text, path)
    jobs = [_entry(e, i, path) for i, e in enumerate(entries, 1)]
    if not jobs:
        raise UsageError(f"plan {path}: no jobs")
    seen: set[str] = set()
    for j in jobs:
        if j.name in seen:
            raise UsageError(f"plan {path}: job name {j.name} appears twice")
        seen.add(j.name)
        check_argv(j, path)
    return jobs


def _yaml(text: str, path: str) -> list[Any]:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"plan {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    defaults: list[str] = []
    if isinstance(doc, dict):
        d = doc.get("defaults") or {}
        if not isinstance(d, dict):
            raise UsageError(f"plan {path}: defaults must be a mapping with args")
        defaults = _args(d.get("args", []), f"plan {path}: defaults")
        doc = doc.get("jobs")
    if not isinstance(doc, list):
        raise UsageError(f"plan {path}: expected a list of jobs (or a mapping with jobs:)")
    return [dict(e, _defaults=defaults) if isinstance(e, dict) else e for e in doc]


def _csv(text: str, path: str) -> list[Any]:
    rows = list(csv.DictReader(text.splitlines()))
    if rows and not {"name", "args"} <= set(rows[0]):
        raise UsageError(f"plan {path}: CSV needs the columns name and args")
    return [{"name": r["name"], "args": r["args"] or ""} for r in rows]


def _args(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as e:
            raise UsageError(f"{where}: args: {e}") from None
    if isinstance(value, list) and all(isinstance(a, str | int | float) for a in value):
        return [str(a) for a in value]
    raise UsageError(f"{where}: args must be a list of strings or one string")


def _entry(e: Any, index: int, path: str) -> JobSpec:
    where = f"plan {path}: job {index}"
    if not isinstance(e, dict) or "args" not in e:
        raise UsageError(f"{where}: expected a mapping with name and args")
    name = str(e.get("name") or "")
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"{where}: name {name!r}: use letters, digits and - _ . + "
                         "(up to 100)")
    return JobSpec(name, _args(e["args"], f"plan {path}: job {name}") + e.get("_defaults", []))


def check_argv(job: JobSpec, path: str = "-") -> None:
    """Build the job's v2v Plan exactly as `v2v` would (and throw it away)."""
    from ..v2v import cli, outputs
    from ..v2v.luks import redact_argv

    for a in job.argv:
        if a.split("=", 1)[0] in NOT_A_CONVERSION:
            raise UsageError(f"plan {path}: job {job.name}: {a} is not a conversion")
    if "--keys-from-stdin" in job.argv or redact_argv(job.argv) != job.argv:
        raise UsageError(f"plan {path}: job {job.name}: a LUKS passphrase in a plan would be "
                         "stored in the broker; use --key SELECTOR:file:FILE (a file on the "
                         "workers)")
    try:
        ns = cli.parse(job.argv)
        p = cli.make_plan(ns)
        if ns.output not in outputs.OUTPUTS:
            outputs.get(ns.output, p.output_opts)  # the one-line error naming the modes
    except V2VError as e:
        kind = UsageError if isinstance(e, UsageError) else V2VError
        raise kind(f"plan {path}: job {job.name}: {e}") from None
