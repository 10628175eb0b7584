"""Shared pytest configuration: TCG for the session, guest fixtures, helpers on sys.path."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from pyv2v import accel  # noqa: E402

pytest_plugins = ["guest_fixtures", "p2v_fixtures", "v2v_fixtures"]

# Configure libguestfs/qemu for the whole session from the real accelerator probe.
accel.apply_to_environ()
os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
