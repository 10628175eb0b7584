"""The appliance launch watchdog against real libguestfs and qemu: LIBGUESTFS_HV is a wrapper
that starts the first appliance paused (qemu -S: it never boots, as a hung TCG qemu never does),
so the real launch hangs; after LAUNCH_TIMEOUT our watchdog kills that qemu, the launch is tried
again with a new handle, and the second (normal) appliance answers.  Unit tests:
test_appliance_watchdog.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pyv2v import process
from pyv2v.v2v import appliance

pytestmark = [pytest.mark.slow]

WRAPPER = """#!/bin/sh
case " $* " in
  *" -kernel "*)
    if [ ! -e {mark} ]; then
      echo $$ > {mark}
      exec {qemu} "$@" -S
    fi;;
esac
exec {qemu} "$@"
"""


def test_hung_real_appliance_is_killed_and_relaunched(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    qemu = shutil.which("qemu-system-x86_64")
    assert qemu
    mark = tmp_path / "first-qemu.pid"
    hv = tmp_path / "qemu-hang-once"
    hv.write_text(WRAPPER.format(mark=mark, qemu=qemu))
    hv.chmod(0o755)
    overlay = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(overlay), "64M"], check=True)
    monkeypatch.setenv("LIBGUESTFS_HV", str(hv))
    monkeypatch.setattr(appliance, "LAUNCH_TIMEOUT", 30.0)
    app = appliance.Appliance([str(overlay)])
    try:
        assert app.g.list_devices() == ["/dev/sda"]   # the second appliance answers
        first = int(mark.read_text())
        assert first != app.pid
        assert not Path(f"/proc/{first}").exists() or \
            Path(f"/proc/{first}/stat").read_text().split(") ")[1].startswith("Z")
        err = capsys.readouterr().err
        assert "did not start within 30 s: its qemu was killed; trying again" in err
    finally:
        app.close()
        process.cancel_cleanup(app._hook)
    assert appliance.qemu_children() == set()
