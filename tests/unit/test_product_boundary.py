"""The product package `pyv2v` (what goes on p2v boot media and conversion servers) holds no test
harness: no fixtures/loopback/demo modules, no import of `pyv2v_harness`, no process started
outside pyv2v.process, and its wheel contains only `pyv2v`."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "src" / "pyv2v"
HARNESS_ONLY = ("fixtures", "loopback", "demo")
# Starting a process; constants such as subprocess.PIPE or TimeoutExpired are fine anywhere.
SPAWNERS = {
    "subprocess": {"Popen", "run", "call", "check_call", "check_output", "getoutput",
                   "getstatusoutput"},
    "os": {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve",
           "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve",
           "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe"},
    "pty": {"spawn", "fork"},
}
SPAWN_MODULES = {"process.py"}   # the one module allowed to start processes


def _modules(root: Path = PRODUCT) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _spawn_calls(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.attr in SPAWNERS.get(node.value.id, ())):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.ImportFrom) and node.module in SPAWNERS:
            found += [f"from {node.module} import {a.name} (line {node.lineno})"
                      for a in node.names if a.name in SPAWNERS[node.module]]
    return found


def test_product_has_no_harness_modules() -> None:
    names = {p.relative_to(PRODUCT).parts[0].removesuffix(".py") for p in _modules()}
    assert names, f"no modules found under {PRODUCT}"
    assert not names & set(HARNESS_ONLY), names & set(HARNESS_ONLY)


def test_product_never_imports_the_harness() -> None:
    bad = [f"{p.relative_to(ROOT)}: {name}" for p in _modules()
           for name in _imports(ast.parse(p.read_text(), str(p)))
           if name.split(".")[0] == "pyv2v_harness"]
    assert not bad


def test_only_process_py_starts_processes() -> None:
    bad = [f"{p.relative_to(ROOT)}: {call}" for p in _modules() if p.name not in SPAWN_MODULES
           for call in _spawn_calls(ast.parse(p.read_text(), str(p)))]
    assert not bad


def test_the_checks_see_what_they_look_for() -> None:
    """The AST walks find an import of the harness and a direct spawn (they can fail)."""
    tree = ast.parse("import pyv2v_harness.loopback\nfrom subprocess import Popen\n"
                     "import os\nos.system('x')\nimport subprocess as s\nsubprocess.run([])\n")
    assert "pyv2v_harness.loopback" in _imports(tree)
    assert len(_spawn_calls(tree)) == 3
    assert _spawn_calls(ast.parse("import subprocess\nx = subprocess.PIPE\n")) == []


def test_wheel_holds_only_the_product(tmp_path: Path) -> None:
    """Build the product wheel from a copy of the tree (offline) and list what it ships."""
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "pyproject.toml", proj)
    shutil.copytree(ROOT / "src", proj / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if (ROOT / "harness").is_dir():   # present beside src/, as in the repository
        shutil.copytree(ROOT / "harness", proj / "harness",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                          "--no-build-isolation", "-w", str(tmp_path / "whl"), str(proj)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (wheel,) = (tmp_path / "whl").glob("pyv2v-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"pyv2v"}, tops
    assert "pyv2v/process.py" in names and "pyv2v/bootcheck.py" in names
    assert not [n for n in names if set(n.removesuffix(".py").split("/")) & set(HARNESS_ONLY)]


@pytest.mark.parametrize("module", ["fixtures", "loopback", "demo", "bootcheck"])
def test_harness_modules_import(module: str) -> None:
    """The harness is installed (make setup) and has what the tests, demo and bench use."""
    import importlib

    mod = importlib.import_module(f"pyv2v_harness.{module}")
    assert mod.__file__ and "harness" in mod.__file__
