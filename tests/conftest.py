"""Shared pytest configuration: TCG for the session, guest fixtures, helpers on sys.path.

`make test` runs the suite on two pytest-xdist workers: xdist_support.py groups the tests that
share an expensive fixture and provides `@pytest.mark.exclusive`; every process a worker starts
carries PYV2V_TEST_WORKER, so proc_helpers.pgrep can leave out the other worker's processes,
and has its own XDG_STATE_HOME (p2v's default known_hosts).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

from proc_helpers import WORKER_VAR, worker_tag  # noqa: E402

from pyv2v import accel  # noqa: E402

pytest_plugins = ["guest_fixtures", "p2v_fixtures", "v2v_fixtures", "xdist_support"]

# Configure libguestfs/qemu for the whole session from the real accelerator probe.
accel.apply_to_environ()
os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ[WORKER_VAR] = worker_tag()
# p2v's default known_hosts (~/.local/state/pyv2v) private to this process: tests do not write
# root's, and the other xdist worker's p2v runs never race ours on the same file.
_state = tempfile.mkdtemp(prefix="pyv2v-test-state-")
atexit.register(shutil.rmtree, _state, ignore_errors=True)
os.environ["XDG_STATE_HOME"] = _state
