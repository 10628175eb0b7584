"""accel: the real probe on this machine answers quickly and says why.

Here /dev/kvm comes from kvm_pvm (nested, no VMX): firmware runs but a stock kernel never starts,
so the answer must be "tcg".  On a host where KVM really works the probe may answer "kvm".
"""

from __future__ import annotations

import os
import time

import pytest

from pyv2v import accel


def _kvm_is_pvm() -> bool:
    return os.path.isdir("/sys/module/kvm_pvm")


@pytest.mark.exclusive  # timed: not while the other xdist worker loads the CPUs
def test_real_probe_answers_within_10s_with_a_reason() -> None:
    start = time.monotonic()
    a = accel.probe()
    took = time.monotonic() - start
    assert took < 10, f"probe took {took:.1f} s"
    assert a.name in ("kvm", "tcg")
    assert a.reason.strip()
    if _kvm_is_pvm() or not os.path.exists("/dev/kvm"):
        assert a.name == "tcg", a.reason


def test_detect_agrees_and_configures_qemu(monkeypatch: object) -> None:
    a = accel.detect()
    assert a.reason.strip()
    if _kvm_is_pvm() and not os.environ.get("PYV2V_ACCEL"):
        assert a.name == "tcg"
    assert accel.qemu_args(a)[:2] == ["-accel", a.name]
