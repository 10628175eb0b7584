"""commit.py: a commit record tells a redelivered job whether the output it finds is its own
(same inode, size and mtime as the staged files it was about to publish), on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyv2v.fleet import commit
from pyv2v.v2v.outputs.base import FileDestination, Target
from pyv2v.v2v.outputs.staging import Staging


def staged(out: Path, name: str = "vm") -> tuple[Target, FileDestination, str]:
    staging = Staging(str(out), name)
    dest = FileDestination(staging, str(out / f"{name}-sda"), "raw")
    with open(dest.staged, "w") as f:
        f.write("disk")
    staging.write_text(str(out / f"{name}.xml"), "<domain/>\n")
    target = Target((dest,), staging)
    return target, dest, commit.record(target)


def test_complete_commit_is_recognised(tmp_path: Path) -> None:
    target, _, rec = staged(tmp_path)
    assert {f["path"] for f in json.loads(rec)["files"]} == {
        str(tmp_path / "vm-sda"),
        str(tmp_path / "vm.xml"),
    }
    assert commit.resolve(rec)[0] == "convert"  # nothing published yet
    target.commit()
    outcome, size = commit.resolve(rec)
    assert outcome == "done" and size > 0


def test_cut_short_commit_is_undone(tmp_path: Path) -> None:
    target, dest, rec = staged(tmp_path)
    dest.commit()  # the disk published, the XML not
    assert (tmp_path / "vm-sda").exists()
    assert commit.resolve(rec) == ("convert", 0)
    assert not (tmp_path / "vm-sda").exists()  # our half guest removed
    target.abort()


def test_a_file_of_someone_else_is_not_ours(tmp_path: Path) -> None:
    target, _, rec = staged(tmp_path)
    target.abort()
    (tmp_path / "vm-sda").write_text("another guest")
    assert commit.resolve(rec) == ("convert", 0)  # the conversion then says "exists"
    assert (tmp_path / "vm-sda").read_text() == "another guest"


def test_output_on_another_host_is_reported_not_duplicated(tmp_path: Path) -> None:
    target, _, rec = staged(tmp_path)
    target.abort()
    other = json.dumps({**json.loads(rec), "host": "elsewhere." + os.uname().nodename})
    assert commit.resolve(other) == ("lost", 0)
    assert "on host elsewhere." in commit.lost_error(other, "pyv2v@a")
