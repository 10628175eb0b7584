"""First-boot scripts: a systemd unit that runs queued shell scripts once, never blocking boot.

`queue(guest, name, body)` installs (once) the runner ``/usr/lib/pyv2v/firstboot`` and the
``pyv2v-firstboot.service`` unit, enabled for multi-user.target, and drops the script into
``/var/lib/pyv2v/firstboot/scripts``.  The unit starts after network-online.target as
``Type=simple`` so nothing waits for it; each script runs under a time limit, its output and exit
status go to ``/var/log/pyv2v-firstboot.log``, and it moves to ``done/`` whatever its outcome.
"""

from __future__ import annotations

from .... import log
from ..guest import Guest

SCRIPT_DIR = "/var/lib/pyv2v/firstboot/scripts"
RUNNER = "/usr/lib/pyv2v/firstboot"
UNIT = "/etc/systemd/system/pyv2v-firstboot.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/pyv2v-firstboot.service"
SCRIPT_TIMEOUT = 900
SYSTEMD = ("/usr/lib/systemd/systemd", "/lib/systemd/systemd")

RUNNER_SH = f"""#!/bin/sh
# pyv2v first-boot runner: run each queued script once, in order, with a time limit.
# A failing script is logged and never retried; the boot does not wait for any of this.
dir=/var/lib/pyv2v/firstboot
log=/var/log/pyv2v-firstboot.log
mkdir -p "$dir/done"
for script in "$dir"/scripts/*; do
    [ -f "$script" ] || continue
    name=$(basename "$script")
    echo "$(date '+%F %T') pyv2v-firstboot: running $name" >>"$log"
    timeout {SCRIPT_TIMEOUT} sh "$script" >>"$log" 2>&1
    echo "$(date '+%F %T') pyv2v-firstboot: $name exited with status $?" >>"$log"
    mv -f "$script" "$dir/done/$name"
done
"""

UNIT_TEXT = f"""[Unit]
Description=pyv2v first-boot scripts (queued by the conversion to KVM)
Wants=network-online.target
After=network-online.target
ConditionDirectoryNotEmpty={SCRIPT_DIR}

[Service]
# simple: the boot never waits for these scripts.
Type=simple
ExecStart={RUNNER}

[Install]
WantedBy=multi-user.target
"""


def supported(guest: Guest) -> bool:
    return any(guest.exists(p) for p in SYSTEMD)


def _install(guest: Guest) -> None:
    guest.mkdir_p("/usr/lib/pyv2v")
    guest.write(RUNNER, RUNNER_SH)
    guest.chmod(0o755, RUNNER)
    guest.write(UNIT, UNIT_TEXT)
    guest.mkdir_p("/etc/systemd/system/multi-user.target.wants")
    guest.symlink("../pyv2v-firstboot.service", WANTS)
    guest.mkdir_p(SCRIPT_DIR)


def queue(guest: Guest, name: str, body: str) -> bool:
    """Queue a script for the first boot; False (with a warning) if the guest has no systemd."""
    if not supported(guest):
        log.warning(f"the guest does not use systemd: first-boot task '{name}' was not queued")
        return False
    if not guest.is_file(RUNNER):
        _install(guest)
    path = f"{SCRIPT_DIR}/{name}"
    guest.write(path, "#!/bin/sh\n" + body)
    guest.chmod(0o755, path)
    log.debug(f"first-boot script queued: {path}")
    return True
