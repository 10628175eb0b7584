"""-i libvirt without a daemon: which connection URIs count as this host (the real daemon is
exercised in tests/integration/test_v2v_libvirt_input.py)."""

from __future__ import annotations

import pytest

from pyv2v.v2v.inputs.libvirt import _remote_host


@pytest.mark.parametrize("uri,host", [
    ("qemu:///system", None),
    ("qemu+unix:///system?socket=/tmp/x/libvirt-sock", None),
    ("qemu://localhost/system", None),
    ("qemu+ssh://root@kvm1/system", "kvm1"),
    ("xen+ssh://root@xenhost/", "xenhost"),
    ("qemu+ssh://root@localhost/system", "localhost"),  # a login, maybe a different machine
    ("qemu+tcp://10.0.0.5/system", "10.0.0.5"),
])
def test_remote_host(uri: str, host: str | None) -> None:
    assert _remote_host(uri) == host
