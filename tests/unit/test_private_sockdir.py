"""Socket directories fit sockaddr_un even when PYV2V_TMPDIR is deep (CI's pytest paths are)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from pyv2v.v2v.inputs.ova_archive import SOCKET_PATH_MAX, private_sockdir


def _bind(d: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(os.path.join(d, "disk12.sock"))


def test_short_tmpdir_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    short = tempfile.mkdtemp(prefix="s", dir="/tmp")
    try:
        monkeypatch.setenv("PYV2V_TMPDIR", short)
        d = private_sockdir("pyv2v-libvirt-ssh-")
        assert Path(d).parent == Path(short) and os.stat(d).st_mode & 0o777 == 0o700
        _bind(d)
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_deep_tmpdir_falls_back_to_a_short_one(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 30)
    deep.mkdir(parents=True)
    monkeypatch.setenv("PYV2V_TMPDIR", str(deep))
    d = private_sockdir("pyv2v-libvirt-ssh-")
    try:
        assert not d.startswith(str(deep))
        assert len(os.path.join(d, "disk12.sock")) <= SOCKET_PATH_MAX
        assert os.stat(d).st_mode & 0o777 == 0o700
        _bind(d)  # would raise "AF_UNIX path too long" under `deep`
    finally:
        shutil.rmtree(d, ignore_errors=True)
