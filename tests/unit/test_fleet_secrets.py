"""LUKS passphrases never reach the fleet store: plans refuse them, p2v records redact them."""

from __future__ import annotations

import json

import pytest

from pyv2v.errors import UsageError
from pyv2v.fleet import p2vjob
from pyv2v.fleet.plan import JobSpec, check_argv
from pyv2v.v2v.luks import redact_argv


def test_redact_argv_hides_key_passphrases_only() -> None:
    argv = ["-i", "disk", "--key", "/dev/sda2:key:s3cr=t:x", "--key=all:key:pw",
            "--key", "all:file:/k", "g.img"]
    assert redact_argv(argv) == ["-i", "disk", "--key", "/dev/sda2:key:***", "--key=all:key:***",
                                 "--key", "all:file:/k", "g.img"]


@pytest.mark.parametrize("extra", [["--key", "all:key:pw"], ["--key=all:key:pw"],
                                   ["--keys-from-stdin"]])
def test_plan_refuses_passphrases(extra: list[str]) -> None:
    with pytest.raises(UsageError, match="passphrase in a plan"):
        check_argv(JobSpec("j", ["-i", "disk", *extra, "/nonexistent.img", "-o", "null"]))


def test_p2v_job_record_redacts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wd = tmp_path / "virt-p2v-20261126-abcdefgh"
    wd.mkdir()
    _, fields = p2vjob.job_fields(str(wd), ["-i", "libvirtxml", "--key", "all:key:hunter2"])
    assert "hunter2" not in fields["argv"]
    assert json.loads(fields["argv"])[-1] == "all:key:***"
