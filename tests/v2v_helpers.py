"""Helpers for v2v tests: run the installed `v2v` command and check its error contract."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
V2V = str(Path(sys.executable).with_name("v2v"))


def run_v2v(*args: str, timeout: float = 1800, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([V2V, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, check=False)


def assert_one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit, no traceback, exactly one error line naming the problem."""
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    errors = [ln for ln in res.stderr.splitlines() if ": error: " in ln]
    assert len(errors) == 1, res.stderr
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME; PYV2V_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("PYV2V_UPDATE_GOLDEN") == "1" or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"differs from golden file {path}"


def vmware_domain_xml(name: str, disk: str | Path, macs: Sequence[str]) -> str:
    """A libvirt domain as libvirt's ESX driver describes a VMware guest (`-i libvirtxml`): one
    raw SCSI disk, a vmxnet3 NIC on 'VM Network' per MAC, in that order."""
    nics = "".join(f"    <interface type='bridge'><mac address='{m}'/>"
                   "<source bridge='VM Network'/>\n      <model type='vmxnet3'/></interface>\n"
                   for m in macs)
    return f"""<domain type='vmware'>
  <name>{name}</name>
  <memory unit='KiB'>1048576</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='sda' bus='scsi'/>
    </disk>
{nics}  </devices>
</domain>
"""
