"""tests/xdist_support.py in a real two-worker pytest-xdist run of a small synthetic suite: the
users of an expensive session fixture run on one worker (built once), independent tests spread
over both workers, and an `exclusive` test never overlaps a test on the other worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

CONFTEST = '''
import os, time
from pathlib import Path
import pytest

def note(kind, start, end):
    with open(os.environ["XD_LOG"], "a") as f:
        f.write(f"{kind} {os.environ['PYTEST_XDIST_WORKER']} {start} {end}\\n")

@pytest.fixture(scope="session")
def expensive():
    t = time.time()
    time.sleep(0.5)
    note("built", t, time.time())

@pytest.fixture
def timed(request):
    t = time.time()
    yield
    note(request.node.name.split("_")[1], t, time.time())
'''

SUITE = {
    "test_a.py": "".join(f"def test_a_{i}(expensive, timed):\n    __import__('time').sleep(0.3)\n"
                         for i in range(6)),
    "test_b.py": "".join(f"def test_b_{i}(timed):\n    __import__('time').sleep(0.3)\n"
                         for i in range(8)),
    "test_x.py": "import pytest\n" + "".join(
        f"@pytest.mark.exclusive\ndef test_x_{i}(timed):\n    __import__('time').sleep(0.6)\n"
        for i in range(2)),
}


def run_suite(tmp_path: Path) -> list[tuple[str, str, float, float]]:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    for name, text in SUITE.items():
        (suite / name).write_text(text)
    log = tmp_path / "log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "PYV2V_TEST_WORKER"))}
    env.update(XD_LOG=str(log), PYTHONPATH=str(TESTS))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "xdist_support", "-n", "2",
                        "--dist", "loadgroup", "-p", "no:cacheprovider", "--rootdir", str(suite),
                        "--basetemp", str(tmp_path / "bt"), str(suite)],
                       cwd=suite, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [ln.split() for ln in log.read_text().splitlines()]
    return [(k, w, float(s), float(e)) for k, w, s, e in rows]


def test_two_workers_group_shared_fixture_users_and_keep_exclusive_tests_alone(
        tmp_path: Path) -> None:
    rows = run_suite(tmp_path)
    built = [r for r in rows if r[0] == "built"]
    assert len(built) == 1, rows  # the session fixture was made once, not once per worker
    assert {r[1] for r in rows if r[0] == "a"} == {built[0][1]}
    assert len([r for r in rows if r[0] == "a"]) == 6 and len([r for r in rows if r[0] == "b"]) == 8
    assert {r[1] for r in rows} == {"gw0", "gw1"}  # the run really was parallel
    for kind, worker, start, end in rows:
        if kind != "x":
            continue
        overlapping = [r for r in rows if r[1] != worker and r[2] < end and start < r[3]]
        assert not overlapping, (kind, worker, start, end, overlapping)


def test_pgrep_leaves_out_other_workers_processes(tmp_path: Path) -> None:
    from proc_helpers import WORKER_VAR, pgrep

    marker = str(tmp_path / "marker")  # unique in the argv
    env = dict(os.environ)
    argv = [sys.executable, "-c", "import time; time.sleep(60)", marker]
    mine = subprocess.Popen(argv, env=env)
    theirs = subprocess.Popen(argv, env={**env, WORKER_VAR: "gw9-1"})
    untagged = subprocess.Popen(argv, env={k: v for k, v in env.items() if k != WORKER_VAR})
    try:
        deadline = time.monotonic() + 30  # right after exec, /proc/PID/cmdline may be empty
        while not all(marker in Path(f"/proc/{p.pid}/cmdline").read_text()
                      for p in (mine, theirs, untagged)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        found = sorted(int(line.split()[0]) for line in pgrep(marker))
        assert found == sorted([mine.pid, untagged.pid]), found
    finally:
        for p in (mine, theirs, untagged):
            p.kill()
            p.wait()
    assert pgrep(marker) == []
