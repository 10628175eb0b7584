"""Two conversions to the same guest name at once: the second is refused at setup (the name
claim), and even runs that both got past every check cannot replace each other's files on commit.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.v2v.outputs import OutputOptions, get
from pyv2v.v2v.outputs.base import Target
from pyv2v.v2v.types import Source, SourceDisk

SRC = Source(name="g", hypervisor="physical", memory=1024**3, vcpus=1,
             disks=(SourceDisk(0, "/src/a", "raw", size=10),))


def setup(out: Path, name: str = "g") -> Target:
    return get("local", OutputOptions(storage=str(out))).setup(name, SRC)


def finish(t: Target, text: str) -> None:
    Path(t.disks[0].copy_target(10).uri).write_text(text)  # what the copier would write
    t.files.write_text(os.path.join(t.dir, "g.xml"), text)  # type: ignore[union-attr]
    t.commit()


def test_second_conversion_to_the_same_name_is_refused_at_setup(tmp_path: Path) -> None:
    first = setup(tmp_path)
    with pytest.raises(V2VError, match=r"^guest g is being converted into .* by another "
                                       r"conversion right now: choose another guest name$"):
        setup(tmp_path)
    other = setup(tmp_path, "h")  # another name is not affected
    other.abort()
    finish(first, "first")
    assert (tmp_path / "g-sda").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["g-sda", "g.xml"]  # the lock file is gone
    with pytest.raises(V2VError, match="already exists"):  # after the commit: the usual check
        setup(tmp_path)


def test_claim_released_on_abort_and_by_a_dead_holder(tmp_path: Path) -> None:
    setup(tmp_path).abort()
    assert os.listdir(tmp_path) == []
    lock = tmp_path / ".g.pyv2v-lock"
    lock.write_text("")  # left by a v2v that was SIGKILLed: nobody holds the lock
    finish(setup(tmp_path), "mine")
    assert sorted(os.listdir(tmp_path)) == ["g-sda", "g.xml"]


def test_planted_symlink_lock_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / ".g.pyv2v-lock")
    with pytest.raises(V2VError, match="cannot create .*pyv2v-lock"):
        setup(out)
    assert victim.read_text() == "precious" and os.listdir(out) == [".g.pyv2v-lock"]


def test_racing_setups_one_wins_and_nothing_is_replaced(tmp_path: Path) -> None:
    """Many threads set up and commit the same guest at once: exactly one succeeds, its files
    are intact, every other gets a one-line error and leaves nothing behind."""
    barrier = threading.Barrier(8)
    results: list[str] = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            finish(setup(tmp_path), f"run {i}")
            results.append(f"ok {i}")
        except V2VError as e:
            assert "\n" not in str(e)
            results.append("refused")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("ok")]
    assert len(results) == 8 and len(winners) == 1, results
    text = f"run {winners[0].split()[1]}"
    assert (tmp_path / "g-sda").read_text() == text and (tmp_path / "g.xml").read_text() == text
    assert sorted(os.listdir(tmp_path)) == ["g-sda", "g.xml"]


def test_commit_stays_exclusive_without_the_claim(tmp_path: Path) -> None:
    """Both runs passed the existence check (the claim taken away from one): the later commit
    fails and removes only its own files."""
    a = setup(tmp_path)
    a.files.release()  # type: ignore[union-attr]  # as if the claim had not been there
    b = setup(tmp_path)
    finish(b, "b")
    with pytest.raises(V2VError, match="appeared while converting"):
        finish(a, "a")
    a.abort()
    assert (tmp_path / "g-sda").read_text() == "b" and (tmp_path / "g.xml").read_text() == "b"
    assert sorted(os.listdir(tmp_path)) == ["g-sda", "g.xml"]
