"""Canned serial-console text shared by the classifier tests (product and harness)."""

from __future__ import annotations

import textwrap

KERNEL = "[    0.000000] Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org)\r\n"
SYSTEMD = ("\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39msystemd-logind.service\x1b[0m - "
           "User Login Management.\r\n")
LOGIN = "\r\nDebian GNU/Linux 12 debian12-physical ttyS0\r\n\r\ndebian12-physical login: "
MARKER = "\r\nPYV2V-MARKER net: lo UNKNOWN 127.0.0.1/8 | eth0 UP 10.0.2.15/24\r\n"
INITRAMFS = textwrap.dedent("""\
    Begin: Running /scripts/local-block ... done.
    done.
    Gave up waiting for root file system device.  Common problems:
     - Boot args (cat /proc/cmdline)
    ALERT!  /dev/sda2 does not exist.  Dropping to a shell!


    BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) built-in shell (ash)
    (initramfs) """).replace("\n", "\r\n")
PANIC = ("[    2.345678] VFS: Unable to mount root fs on unknown-block(0,0)\r\n"
         "[    2.345999] Kernel panic - not syncing: VFS: Unable to mount root fs on "
         "unknown-block(0,0)\r\n")
