"""pytest plugin: what makes the suite safe on several pytest-xdist workers (`make test` runs
`-n 2 --dist loadgroup`; a run without xdist is unaffected).

- Grouping.  Tests that share an expensive non-function-scoped fixture (a conversion, a p2v run,
  a module's image) run on one worker, so it is built once: each such fixture of the project
  (defined under the rootdir, not installed) in a test's closure ties the test to the others
  using it (transitively, with explicit `xdist_group` marks), and the group goes into the node
  id as xdist's loadgroup expects (done here: xdist 3.8's own mark handling has no effect with
  pytest 9).  Exempt (`WORKER_SAFE`, `WORKER_SAFE_MODULES`): fixtures that are cheap per worker
  or cached on disk under their own lock.  `SHARED_ON_DISK` fixtures (converted once per run,
  see v2v_fixtures.shared_result) tie their users only within a module, so that a worker does
  not sit waiting for the other worker's conversion.  Only fixtures named in a test's signature
  (or its fixtures') are seen: one fetched with `request.getfixturevalue` ties nothing, so its
  users may each build it on their own worker.
- `@pytest.mark.exclusive`: the test runs while no test runs on another worker (a readers-
  writer flock in the run's shared temp dir; consecutive exclusive tests keep it), for tests
  that time something or need the CPUs to themselves.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

WORKER_SAFE = frozenset({"p2v_sshd", "p2v_media_base"})  # media: cached under a file lock
WORKER_SAFE_MODULES = frozenset({"guest_fixtures.py"})
SHARED_ON_DISK = frozenset({"converted_local", "converted_uefi"})
INSTALLED = frozenset({"site-packages", "dist-packages"})  # pytest's own fixtures, plugins'

_ORIGINAL_ID = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "exclusive: runs while no test runs on another xdist worker (timing, CPU)")


def _loadgroup(config: pytest.Config) -> bool:
    """A worker of a `--dist loadgroup` run (xdist sets option.loadgroup in its workers)."""
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) and bool(
        getattr(config.option, "loadgroup", False))


def _module_name(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0].split("/")[-1]


def tie_keys(item: pytest.Item) -> list[str]:
    """Names of what ties `item` to other tests: explicit groups, expensive shared fixtures."""
    keys = [str(m.args[0] if m.args else m.kwargs.get("name", "default"))
            for m in item.iter_markers("xdist_group")]
    root = item.config.rootpath
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        defs = info.name2fixturedefs.get(name) if info is not None else None
        if not defs or name in WORKER_SAFE:
            continue
        fd = defs[-1]
        code = getattr(fd.func, "__code__", None)
        where = Path(code.co_filename) if code is not None else None
        if fd.scope == "function" or where is None or root not in where.parents \
                or where.name in WORKER_SAFE_MODULES or INSTALLED & set(where.parts):
            continue
        if name in SHARED_ON_DISK:
            keys.append(f"{_module_name(item)}:{name}")
        elif fd.scope in ("session", "package"):
            keys.append(name)
        else:  # module/class: one instance per module (or class)
            owner = item.getparent(pytest.Class if fd.scope == "class" else pytest.Module)
            nodeid = owner.nodeid if owner is not None else item.nodeid
            keys.append(f"{nodeid.split('/')[-1]}:{name}")
    return [k.replace("@", "_").replace("]", "_") for k in keys]


def group_items(items: list[pytest.Item]) -> dict[str, list[pytest.Item]]:
    """Union-find over the tie keys: one group (named by its smallest key) per connected set."""
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    item_keys = [(item, tie_keys(item)) for item in items]
    for _, keys in item_keys:
        for k in keys[1:]:
            a, b = find(keys[0]), find(k)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[pytest.Item]] = {}
    for item, keys in item_keys:
        if keys:
            groups.setdefault(find(keys[0]), []).append(item)
    return groups


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.stash[_ORIGINAL_ID] = item.nodeid


@pytest.hookimpl(tryfirst=True)  # before xdist sends the node ids to the controller
def pytest_collection_finish(session: pytest.Session) -> None:
    if not _loadgroup(session.config):
        return
    grouped = group_items(session.items)
    for name, members in grouped.items():
        for item in members:
            _set_nodeid(item, f"{item.stash.get(_ORIGINAL_ID, item.nodeid)}@{name}")


def _set_nodeid(item: pytest.Item, nodeid: str) -> None:
    """What xdist's own xdist_group support does, for pytest 9 too (whose node ids live in
    `_id`: there xdist's `item._nodeid = …` has no effect and its marks group nothing)."""
    if hasattr(item, "_id"):
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid  # type: ignore[attr-defined]
    assert item.nodeid == nodeid


def shared_dir(config: pytest.Config) -> Path | None:
    """This run's directory shared by all xdist workers (None when not under xdist)."""
    basetemp = getattr(config.option, "basetemp", None)
    if not os.environ.get("PYTEST_XDIST_WORKER") or not basetemp:
        return None
    return Path(basetemp).resolve().parent


class Gate:
    """Readers-writer lock across workers: every test holds it shared, an exclusive test holds
    it exclusively.  A turnstile keeps new shared holders out while an exclusive one waits."""

    def __init__(self, d: Path) -> None:
        self.main: IO[str] = open(d / "pyv2v-exclusive.lock", "a")  # noqa: SIM115
        self.turnstile: IO[str] = open(d / "pyv2v-exclusive.turnstile", "a")  # noqa: SIM115
        self.held: str | None = None

    def enter(self, mode: str) -> None:
        if self.held == mode:
            return
        self.leave()
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.main, fcntl.LOCK_EX if mode == "ex" else fcntl.LOCK_SH)
        finally:
            fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        self.held = mode

    def leave(self) -> None:
        if self.held:
            fcntl.flock(self.main, fcntl.LOCK_UN)
            self.held = None


_gate: list[Gate] = []


def _exclusive(item: pytest.Item | None) -> bool:
    return item is not None and item.get_closest_marker("exclusive") is not None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    d = shared_dir(item.config)
    if d is None:
        return (yield)
    if not _gate:
        _gate.append(Gate(d))
    gate = _gate[0]
    gate.enter("ex" if _exclusive(item) else "sh")
    try:
        return (yield)
    finally:
        if not (_exclusive(item) and _exclusive(nextitem)):
            gate.leave()
