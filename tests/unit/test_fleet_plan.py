"""Fleet plans: YAML and CSV entries become v2v argument lists, checked by v2v's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.errors import UsageError, V2VError
from pyv2v.fleet import plan
from pyv2v.fleet.cli import main
from pyv2v.fleet.tasks import build_plan


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_yaml_mapping_with_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", """
defaults: {args: [-o, local, -of, qcow2]}
jobs:
  - {name: web1, args: [-i, disk, /x/web1.img]}
  - {name: db1, args: "-i disk '/x/db 1.img' --root first"}
""")
    jobs = plan.load(path)
    assert [j.name for j in jobs] == ["web1", "db1"]
    assert jobs[0].argv == ["-i", "disk", "/x/web1.img", "-o", "local", "-of", "qcow2"]
    assert jobs[1].argv[:3] == ["-i", "disk", "/x/db 1.img"]


def test_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "name,args\nvm1,-i disk /x/a.img -o local\n"
                                    "vm2,-i vmx /x/b.vmx -o null\n")
    assert [(j.name, j.argv[1]) for j in plan.load(path)] == [("vm1", "disk"), ("vm2", "vmx")]


@pytest.mark.parametrize("text, message", [
    ("- {name: a, args: -i disk x -o nosuch}", "job a: "),
    ("- {name: a, args: -i disk x --in-place}", "--in-place is not supported"),
    ("- {name: a, args: -i disk x --print-source}", "not a conversion"),
    ("- {name: '../x', args: -i disk x}", "name '../x'"),
    ("- {name: a, args: -i disk x}\n- {name: a, args: -i disk y}", "appears twice"),
    ("- {name: a}", "mapping with name and args"),
    ("[]", "no jobs"),
    ("{jobs: 3}", "expected a list"),
    ("- {name: a, args: '-i disk \"x'}", "No closing quotation"),
    ("{[", "not valid YAML"),
])
def test_bad_plans_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "p.yaml", text)
    with pytest.raises(V2VError) as e:
        plan.load(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_csv_needs_columns(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="columns name and args"):
        plan.load(write(tmp_path, "p.csv", "host,argv\na,b\n"))


def test_submit_bad_plan_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.yaml", "- {name: a, args: -i disk x -o nosuch}")
    assert main(["--broker", "redis://127.0.0.1:1/0", "submit", path]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuch" in err and "Traceback" not in err


def test_unreachable_broker_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--broker", "redis://:sekrit@127.0.0.1:1/0", "status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "127.0.0.1:1" in err and "sekrit" not in err


def test_worker_storage_applies_to_directory_outputs_only(tmp_path: Path) -> None:
    p = build_plan(["-i", "disk", "x.img", "-o", "local"], str(tmp_path))
    assert p.output_opts.storage == str(tmp_path)
    p = build_plan(["-i", "disk", "x.img", "-o", "local", "-os", "/elsewhere"], str(tmp_path))
    assert p.output_opts.storage == "/elsewhere"
    p = build_plan(["-i", "disk", "x.img", "-o", "null"], str(tmp_path))
    assert p.output_opts.storage is None
