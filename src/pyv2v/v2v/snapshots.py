"""Inspection roots that are btrfs snapshots of another root (snapper's .snapshots/N/snapshot,
timeshift's, a hand-made `btrfs subvolume snapshot`): not operating systems of their own.

libguestfs inspects every btrfs subvolume, so a guest with snapshots of its root shows up as
several operating systems.  On each btrfs filesystem holding more than one root we keep:

1. the root that is the filesystem's default subvolume, if any root is (openSUSE boots the
   default subvolume, which is itself a snapshot after a rollback);
2. otherwise the roots that are not snapshots (their subvolume has no parent UUID).

A root on its own filesystem, or on a filesystem where this rule would keep nothing, is kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from .. import log

# libguestfs names a subvolume "btrfsvol:DEVICE/PATH" (DEVICE: /dev/sda2, /dev/mapper/NAME…).
_BTRFSVOL_RE = re.compile(r"^btrfsvol:(/dev/(?:mapper/)?[^/]+)/(.+)$")


def _subvolume_facts(g: Any, dev: str) -> tuple[str, dict[str, bool]] | None:
    """(default subvolume path, {path: is a snapshot}) for the btrfs filesystem on `dev`."""
    try:
        g.mount_options("ro,subvolid=5", dev, "/")
    except RuntimeError as e:
        log.debug(f"btrfs {dev}: cannot mount the top level to look for snapshots: {e}")
        return None
    try:
        default_id = int(g.btrfs_subvolume_get_default("/"))
        default = ""
        snapshot: dict[str, bool] = {}
        for sv in g.btrfs_subvolume_list("/"):
            path = str(sv["btrfssubvolume_path"]).lstrip("/")
            if int(sv["btrfssubvolume_id"]) == default_id:
                default = path
            show = g.btrfs_subvolume_show("/" + path)
            parent = str(show.get("Parent UUID", "-")).strip()
            snapshot[path] = parent not in ("", "-")
        return default, snapshot
    except RuntimeError as e:
        log.debug(f"btrfs {dev}: cannot list subvolumes: {e}")
        return None
    finally:
        g.umount("/")


def drop_snapshot_roots(g: Any, roots: list[str]) -> list[str]:
    """`roots` without the btrfs snapshots of another root (see the module docstring)."""
    by_dev: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in roots:
        m = _BTRFSVOL_RE.match(r)
        if m:
            by_dev[m.group(1)].append((r, m.group(2)))
    dropped: set[str] = set()
    for dev, members in by_dev.items():
        if len(members) < 2:
            continue
        facts = _subvolume_facts(g, dev)
        if facts is None:
            continue
        default, snapshot = facts
        keep = [r for r, path in members if path == default]
        if not keep:
            keep = [r for r, path in members if not snapshot.get(path, False)]
        if not keep:
            continue
        for r, path in members:
            if r not in keep:  # named by subvolume: `dev` is the appliance's name, not the guest's
                log.message(f"Ignoring the btrfs subvolume {path}: a snapshot of the guest's "
                            "root, not a separate operating system")
                dropped.add(r)
    return [r for r in roots if r not in dropped]
