"""accel: both answers of the KVM probe with a fake qemu-system-x86_64 on PATH (a kernel that
panics = KVM works; firmware that hangs = TCG), the PYV2V_ACCEL override, and the caches."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from pyv2v import accel
from pyv2v.accel import Accel

FAKE = """\
#!{python}
import sys, time
sys.stdout.write({text!r})
sys.stdout.flush()
time.sleep({sleep})
"""
PANIC = ("SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from ROM..\n"
         "[    0.000000] Linux version 6.1.0\n"
         "[    1.2] VFS: Unable to mount root fs on unknown-block(0,0)\n"
         "[    1.3] Kernel panic - not syncing: VFS: Unable to mount root fs\n")
HANG = "SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from ROM..\n"


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated PATH dir for a fake qemu, a fake kernel, /dev/kvm 'present', fresh caches."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("PYV2V_ACCEL", raising=False)
    (tmp_path / "vmlinuz").write_bytes(b"not really a kernel")
    real_exists, real_access = os.path.exists, os.access
    monkeypatch.setattr(accel.os.path, "exists",
                        lambda p: True if p == "/dev/kvm" else real_exists(p))
    monkeypatch.setattr(accel.os, "access",
                        lambda p, m: True if p == "/dev/kvm" else real_access(p, m))
    monkeypatch.setattr(accel, "_cached", None)
    monkeypatch.setattr(accel, "_cache_path", lambda: str(tmp_path / "accel-cache.json"))
    return tmp_path


def _install_fake(env: Path, text: str, sleep: float) -> None:
    fake = env / "bin" / "qemu-system-x86_64"
    fake.write_text(FAKE.format(python=sys.executable, text=text, sleep=sleep))
    fake.chmod(0o755)


def test_kernel_that_panics_means_kvm(fake_env: Path) -> None:
    _install_fake(fake_env, PANIC, 0)
    a = accel.probe(timeout=10, kernel=str(fake_env / "vmlinuz"))
    assert a.name == "kvm"
    assert "booted under KVM" in a.reason


def test_firmware_that_hangs_means_tcg_without_hanging(fake_env: Path) -> None:
    _install_fake(fake_env, HANG, 120)
    start = time.monotonic()
    a = accel.probe(timeout=1.5, kernel=str(fake_env / "vmlinuz"))
    took = time.monotonic() - start
    assert a.name == "tcg"
    assert "firmware ran, kernel hung" in a.reason
    assert took < 10


def test_silent_qemu_means_tcg(fake_env: Path) -> None:
    _install_fake(fake_env, "", 0)
    a = accel.probe(timeout=5, kernel=str(fake_env / "vmlinuz"))
    assert a.name == "tcg" and "no kernel output" in a.reason


def test_no_qemu_means_tcg(fake_env: Path) -> None:
    a = accel.probe(timeout=5, kernel=str(fake_env / "vmlinuz"))
    assert a == Accel("tcg", "qemu-system-x86_64 is not installed")


def test_no_dev_kvm_means_tcg(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.path.exists
    monkeypatch.setattr(accel.os.path, "exists", lambda p: False if p == "/dev/kvm" else real(p))
    assert accel.probe() == Accel("tcg", "/dev/kvm does not exist")


@pytest.mark.parametrize("forced", ["kvm", "tcg", "TCG "])
def test_env_override(fake_env: Path, monkeypatch: pytest.MonkeyPatch, forced: str) -> None:
    monkeypatch.setenv("PYV2V_ACCEL", forced)
    monkeypatch.setattr(accel, "probe", lambda *a, **k: pytest.fail("must not probe"))
    a = accel.detect()
    assert a.name == forced.strip().lower()
    assert "PYV2V_ACCEL" in a.reason


def test_detect_caches_in_memory_and_on_disk(fake_env: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_probe(*args: object, **kw: object) -> Accel:
        calls.append(1)
        return Accel("tcg", "probed")

    monkeypatch.setattr(accel, "probe", fake_probe)
    assert accel.detect() == Accel("tcg", "probed")
    assert accel.detect() == Accel("tcg", "probed")
    assert len(calls) == 1
    assert json.loads((fake_env / "accel-cache.json").read_text()) == {
        "name": "tcg", "reason": "probed"}
    monkeypatch.setattr(accel, "_cached", None)          # a new process: the file answers
    a = accel.detect()
    assert a.name == "tcg" and "cached" in a.reason and len(calls) == 1
    accel.detect(use_cache=False)                        # explicitly uncached: probes again
    assert len(calls) == 2


def test_corrupt_cache_file_is_ignored(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fake_env / "accel-cache.json").write_text("{not json")
    monkeypatch.setattr(accel, "probe", lambda *a, **k: Accel("kvm", "probed"))
    assert accel.detect() == Accel("kvm", "probed")


def test_qemu_args_and_libguestfs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    kvm, tcg = Accel("kvm", "x"), Accel("tcg", "y")
    assert accel.qemu_args(kvm) == ["-accel", "kvm", "-cpu", "host"]
    assert accel.qemu_args(tcg) == ["-accel", "tcg", "-cpu", "max"]
    assert accel.libguestfs_env(kvm) == {}
    monkeypatch.delenv("LIBGUESTFS_BACKEND_SETTINGS", raising=False)
    assert accel.libguestfs_env(tcg) == {"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}
    monkeypatch.setenv("LIBGUESTFS_BACKEND_SETTINGS", "network_bridge=br0")
    assert accel.libguestfs_env(tcg) == {
        "LIBGUESTFS_BACKEND_SETTINGS": "network_bridge=br0:force_tcg"}
    monkeypatch.setenv("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")  # full value, not a delta
    assert accel.libguestfs_env(tcg) == {"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}
