"""Staging dirs left by a conversion killed outright (a fleet worker's kill -9): they never block
a redelivered job, and are removed only while their guest name is claimed (staging.py)."""

from __future__ import annotations

import os
from pathlib import Path

from pyv2v.v2v.outputs.staging import Staging, remove_stale


def leftover(d: Path, name: str, rnd: str = "abc_1234") -> Path:
    p = d / f".{name}-{rnd}.pyv2v-partial"
    p.mkdir(mode=0o700)
    (p / f"{name}-sda").write_bytes(b"half a disk")
    return p


def test_redelivered_conversion_succeeds_and_removes_its_leftover(tmp_path: Path) -> None:
    stale = leftover(tmp_path, "vm")
    cousin = leftover(tmp_path, "vm-x")            # another guest's: not ours to touch
    s = Staging(str(tmp_path), "vm")
    staged = s.create(str(tmp_path / "vm-sda"))
    Path(staged).write_bytes(b"disk")
    s.commit()
    assert not stale.exists() and cousin.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [cousin.name, "vm-sda"]


def test_worker_startup_removes_only_unclaimed_leftovers(tmp_path: Path) -> None:
    dead = leftover(tmp_path, "dead")
    live = Staging(str(tmp_path), "busy")          # a conversion running right now
    busy_stale = leftover(tmp_path, "busy", "zzzz9999")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / ".link-abcdefgh.pyv2v-partial").symlink_to(target)
    (tmp_path / ".notours-abcdefgh.pyv2v-partial.txt").write_text("x")
    removed = remove_stale(str(tmp_path))
    assert removed == [str(dead)]
    assert Path(live.dir).exists() and busy_stale.exists() and target.exists()
    live.abort()
    assert remove_stale(str(tmp_path)) == [str(busy_stale)]
    assert not list(tmp_path.glob(".*.pyv2v-lock"))   # claims taken for the check are released
    assert os.path.islink(tmp_path / ".link-abcdefgh.pyv2v-partial")


def test_a_live_run_is_never_removed_even_without_its_claim(tmp_path: Path) -> None:
    live = Staging(str(tmp_path), "g")
    live.release()                                  # as if the name claim had been lost
    assert remove_stale(str(tmp_path)) == [] and Path(live.dir).exists()
    Staging(str(tmp_path), "g").abort()             # a second run of g: its own dir only
    assert Path(live.dir).exists()
    live.abort()
    assert list(tmp_path.iterdir()) == []
