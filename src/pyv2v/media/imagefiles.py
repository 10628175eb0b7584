"""The files that make the live system a p2v machine: systemd units, the boot-time generator
that picks kernel mode or the console UI, networking, and the small launch scripts.

Boot behaviour: `p2v.server=`/`p2v.remote.server=` on the kernel command line (or a server in
the baked /etc/pyv2v/p2v.conf) → p2v-kernel.service runs `p2v` non-interactively with its
output on the console, then p2v.post/p2v.fail act (poweroff by default after success, as
root).  Otherwise the console UI runs on tty1 and on every `console=ttyS…` the kernel was
given.  tty2 always holds a root shell (no login anywhere).  The network comes up by DHCP on
every Ethernet link; `ip=` on the command line (systemd-network-generator) takes precedence.
The keyboard layout: `vconsole.keymap=de` (or KEYMAP= in /etc/vconsole.conf) loaded by our
p2v-keymap.service with console-data's keymaps: Debian's systemd has no systemd-vconsole-setup.
"""

from __future__ import annotations

import os

CONF = "/etc/pyv2v/p2v.conf"

GENERATOR = r"""#!/bin/sh
# pyv2v media: choose p2v kernel mode or the console UI for this boot (a systemd generator).
set -f
out="${1:-/run/systemd/generator}"
wants="$out/multi-user.target.wants"
units=/usr/lib/systemd/system
mkdir -p "$wants"
kernel=no
serials=""
conf="${PYV2V_P2V_CONF:-@CONF@}"  # the overrides are for tests
for w in $(cat "${PYV2V_PROC_CMDLINE:-/proc/cmdline}"); do
  case "$w" in
    p2v.server=?*|p2v.remote.server=?*) kernel=yes ;;
    console=ttyS*) s="${w#console=}"; serials="$serials ${s%%,*}" ;;
  esac
done
if [ "$kernel" = no ] && grep -Eq \
    '^[[:space:]]*(p2v\.)?(remote\.)?server[[:space:]]*=[[:space:]]*[^[:space:]"]' \
    "$conf" 2>/dev/null; then
  kernel=yes
fi
if [ "$kernel" = yes ]; then
  ln -sf "$units/p2v-kernel.service" "$wants/p2v-kernel.service"
else
  ln -sf "$units/p2v-console@.service" "$wants/p2v-console@tty1.service"
  for s in $serials; do
    ln -sf "$units/p2v-console@.service" "$wants/p2v-console@$s.service"
  done
fi
""".replace("@CONF@", CONF)

CONSOLE_LAUNCH = """#!/bin/sh
# pyv2v media: the p2v console UI on the terminal $1 (tty1 or a serial console).
tty="/dev/$1"
case "$1" in
  ttyS*) export TERM=vt220
         set -- $(stty -F "$tty" size 2>/dev/null)
         if [ "${1:-0}" = 0 ]; then stty -F "$tty" rows 24 cols 80; fi ;;
  *) export TERM=linux ;;
esac
export HOME=/root
exec /usr/bin/p2v --config @CONF@ --iso
""".replace("@CONF@", CONF)

KEYMAP = r"""#!/bin/sh
# pyv2v media: load the console keyboard layout named by vconsole.keymap= on the kernel command
# line (or KEYMAP= in /etc/vconsole.conf); the layout is global to every virtual terminal.
set -f
map=""
conf="${PYV2V_VCONSOLE_CONF:-/etc/vconsole.conf}"  # the overrides are for tests
if [ -r "$conf" ]; then
  map=$(sed -n 's/^KEYMAP=\(["]\{0,1\}\)\(.*\)\1$/\2/p' "$conf")
fi
for w in $(cat "${PYV2V_PROC_CMDLINE:-/proc/cmdline}"); do
  case "$w" in vconsole.keymap=*) map="${w#vconsole.keymap=}" ;; esac
done
[ -n "$map" ] || exit 0
exec loadkeys -q -C "${PYV2V_KEYMAP_TTY:-/dev/tty1}" "$map"
"""

KEYMAP_UNIT = """[Unit]
Description=p2v media: console keyboard layout (vconsole.keymap=)
DefaultDependencies=no
Before=sysinit.target p2v-kernel.service
ConditionPathExists=/dev/tty1

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/pyv2v/p2v-keymap
StandardOutput=journal+console
StandardError=journal+console
"""

STATUS = r"""#!/bin/sh
# pyv2v media: what this boot set up, on the console before kernel-mode p2v starts (an
# administrator watching the screen sees which address and route p2v will use, and whether
# the keyboard layout took: the key right of T types y on a US keymap, z on a German one).
ip -4 -brief address show scope global | sed 's/^/p2v media: address /'
ip -4 route show default | sed 's/^/p2v media: route /'
key=$(dumpkeys -C /dev/tty1 2>/dev/null | sed -n 's/^keycode  *21 = *\([^ ]*\).*/\1/p')
echo "p2v media: keyboard: keycode 21 types ${key:-?}"
"""

P2V_SCRIPT = """#!/usr/bin/python3
import sys

from pyv2v.p2v.cli import main

sys.exit(main())
"""

KERNEL_UNIT = f"""[Unit]
Description=p2v: convert this machine (kernel mode: a conversion server is configured)
Wants=network-online.target
After=network-online.target systemd-resolved.service p2v-keymap.service

[Service]
Type=simple
ExecStartPre=-/usr/lib/pyv2v/p2v-status
ExecStart=/usr/bin/p2v --config {CONF}
StandardInput=null
StandardOutput=journal+console
StandardError=journal+console
Environment=HOME=/root TERM=linux
"""

CONSOLE_UNIT = """[Unit]
Description=p2v console UI on %I
After=systemd-user-sessions.service p2v-keymap.service
Conflicts=getty@%i.service serial-getty@%i.service

[Service]
ExecStart=/usr/lib/pyv2v/p2v-console %I
StandardInput=tty
StandardOutput=tty
# Textual draws on stderr: it must be the terminal too
StandardError=tty
TTYPath=/dev/%I
TTYReset=yes
TTYVHangup=yes
Restart=always
RestartSec=2
TimeoutStopSec=5
"""

SHELL_UNIT = """[Unit]
Description=root shell for the administrator on %I (p2v media)

[Service]
ExecStart=/bin/bash -l
StandardInput=tty
StandardOutput=tty
TTYPath=/dev/%I
TTYReset=yes
TTYVHangup=yes
Restart=always
RestartSec=1
Environment=HOME=/root TERM=linux
# an interactive bash ignores SIGTERM: without this, every poweroff waits 90 s for it
KillSignal=SIGHUP
TimeoutStopSec=5
"""

DHCP_NETWORK = """# p2v media: DHCP on every Ethernet link unless ip= on the kernel command line
# configured it (systemd-network-generator writes lower-numbered files in /run).
[Match]
Type=ether

[Network]
DHCP=yes

[DHCPv4]
ClientIdentifier=mac
"""

WAIT_ONLINE_DROPIN = """[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=90
"""

ISSUE = """pyv2v p2v boot media - Alt+F2: root shell.  Kernel mode: p2v.server=HOST on the command
line; otherwise the conversion UI runs on tty1.

"""

# path in the image → (text, mode)
FILES: dict[str, tuple[str, int]] = {
    "/usr/lib/systemd/system-generators/pyv2v-p2v-generator": (GENERATOR, 0o755),
    "/usr/lib/pyv2v/p2v-console": (CONSOLE_LAUNCH, 0o755),
    "/usr/lib/pyv2v/p2v-status": (STATUS, 0o755),
    "/usr/lib/pyv2v/p2v-keymap": (KEYMAP, 0o755),
    "/usr/lib/systemd/system/p2v-keymap.service": (KEYMAP_UNIT, 0o644),
    "/usr/bin/p2v": (P2V_SCRIPT, 0o755),
    "/usr/lib/systemd/system/p2v-kernel.service": (KERNEL_UNIT, 0o644),
    "/usr/lib/systemd/system/p2v-console@.service": (CONSOLE_UNIT, 0o644),
    "/usr/lib/systemd/system/p2v-shell@.service": (SHELL_UNIT, 0o644),
    "/usr/lib/systemd/network/99-p2v-dhcp.network": (DHCP_NETWORK, 0o644),
    "/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf": (
        WAIT_ONLINE_DROPIN,
        0o644,
    ),
    "/etc/issue": (ISSUE, 0o644),
    "/etc/hostname": ("p2v\n", 0o644),
    "/etc/hosts": ("127.0.0.1\tlocalhost\n127.0.1.1\tp2v\n::1\tlocalhost\n", 0o644),
    "/etc/fstab": ("# p2v media: the root is the initramfs (tmpfs)\n", 0o644),
}
_ETC, _LIB, _OURS = "/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"
# enabled units: (target, unit file, instance name in the target's .wants or "")
ENABLED = [
    ("multi-user", f"{_OURS}/p2v-shell@.service", "p2v-shell@tty2.service"),
    ("sysinit", f"{_OURS}/p2v-keymap.service", ""),
    ("multi-user", f"{_LIB}/systemd-networkd.service", ""),
    ("multi-user", f"{_LIB}/systemd-resolved.service", ""),
    ("sysinit", f"{_LIB}/systemd-network-generator.service", ""),
    ("network-online", f"{_LIB}/systemd-networkd-wait-online.service", ""),
]
# link in the image → target
LINKS = {f"{_ETC}/{t}.target.wants/{n or os.path.basename(u)}": u for t, u, n in ENABLED}
# nothing asks for a login: no getty on tty1 or on serial consoles
LINKS.update(
    {
        f"{_ETC}/{u}": "/dev/null"
        for u in (
            "getty@tty1.service",
            "serial-getty@.service",
            "console-getty.service",
            "serial-getty@ttyS0.service",
        )
    }
)


def write_all(root: str) -> None:
    """Write FILES and LINKS into the image tree at `root`."""
    for path, (text, mode) in FILES.items():
        dst = root + path
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(dst, mode)
    for link, target in LINKS.items():
        dst = root + link
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            os.unlink(dst)
        os.symlink(target, dst)


def remove_all(root: str) -> None:
    """Take FILES and LINKS out of the tree again (the base build's checks used them)."""
    for path in [*FILES, *LINKS]:
        if os.path.lexists(root + path):
            os.unlink(root + path)
