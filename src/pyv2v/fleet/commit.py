"""A redelivered job recognises its own committed output (the worker died after the commit but
before it recorded the outcome and acknowledged the message).

Just before v2v's pipeline commits its output (`Monitor.committing`), the job's hash gets a
commit record: this host and, for every staged file about to be published, its final path and
the staged file's inode, size and mtime.  Publishing is link(2) or rename(2), so a final name that
carries that very inode (and size and mtime) is this job's file — a marker no other writer can
fake by creating a file under the same name.  A later delivery of the job reads the record:

    every file there, ours        the commit completed: the job is done (no second conversion,
                                  no "guest exists", no duplicate)
    none there, on this host      the commit never happened: convert again
    some there                    the commit was cut short: our published part is removed, then
                                  the job converts again
    none visible, another host    that host's output storage is not ours to see: the job fails
                                  with a line saying where to look (never a silent duplicate)

Outputs that publish no local files (pool volumes, -o null) record nothing: converted again.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any


def record(target: Any) -> str:
    """The commit record (JSON) of a pipeline Target about to be committed."""
    files = []
    staging = getattr(target, "files", None)
    for staged, final in (getattr(staging, "pending", None) or {}).items():
        try:
            st = os.lstat(staged)
        except OSError:
            continue
        files.append({"path": final, "ino": st.st_ino, "size": st.st_size, "mtime": st.st_mtime_ns})
    return json.dumps({"host": socket.gethostname(), "files": files})


def _ours(f: dict[str, Any]) -> bool | None:
    """True: our published file · False: nothing there · None: another file has the name."""
    try:
        st = os.lstat(f["path"])
    except OSError:
        return False
    same = (st.st_ino, st.st_size, st.st_mtime_ns) == (f["ino"], f["size"], f["mtime"])
    return True if same else None


def resolve(raw: str) -> tuple[str, int]:
    """("done", bytes) · ("convert", 0) after removing a cut-short commit's part ·
    ("lost", 0) when the output went to another host's storage we cannot see."""
    rec = json.loads(raw)
    files = rec.get("files") or []
    if not files:
        return "convert", 0
    seen = [_ours(f) for f in files]
    if all(s is True for s in seen):
        return "done", sum(os.lstat(f["path"]).st_blocks * 512 for f in files)
    if not any(s is True for s in seen) and rec.get("host") != socket.gethostname():
        return "lost", 0
    for f, s in zip(files, seen, strict=True):
        if s is True:  # half a guest, and ours: the new conversion writes it whole
            os.unlink(f["path"])
    return "convert", 0


def lost_error(raw: str, worker: str) -> str:
    rec = json.loads(raw)
    first = (rec.get("files") or [{}])[0].get("path", "?")
    return (
        f"the worker that ran this job ({worker}) died while committing its output on host "
        f"{rec.get('host')} ({first}): check it there; v2v-fleet retry converts again"
    )
