"""`make demo`: build (or reuse) the demo guest, convert it with `v2v`, boot the result.

The demo guest is the debian12-physical fixture: a Debian 12 install that looks like a physical
server (device names in fstab/GRUB, no virtio drivers, open-vm-tools).  The demo converts it with
``v2v -i disk … -o local``, then boots the converted disk under qemu on virtio-blk and shows
whether it reached a login prompt with its network up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from . import accel, bootcheck, log
from .fixtures import ensure_image

OUT = os.environ.get("PYV2V_DEMO_DIR", "/var/tmp/pyv2v-demo")


def main() -> int:
    log.configure(prog="demo")
    a = accel.detect()
    log.info(f"accelerator: {a.name} ({a.reason})")
    log.info("preparing the demo guest (built once, then cached) …")
    image = ensure_image("debian12-physical")
    log.info(f"demo guest: {image}")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    v2v = os.path.join(os.path.dirname(sys.executable), "v2v")
    argv = [v2v, "-i", "disk", str(image), "-on", "demo", "-o", "local", "-os", OUT]
    log.info("$ " + " ".join(argv))
    start = time.monotonic()
    rc = subprocess.call(argv)
    took = time.monotonic() - start
    if rc != 0:
        log.error(f"conversion failed (exit {rc})")
        return rc
    for name in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, name)
        st = os.stat(p)
        log.info(f"  {p}: {st.st_size / 1024**3:.2f} GiB virtual, "
                 f"{st.st_blocks * 512 / 1024**2:.0f} MiB allocated")
    log.info("booting the converted guest on virtio-blk (qemu, serial console) …")
    res = bootcheck.boot(os.path.join(OUT, "demo-sda"), bus="virtio-blk",
                         nic_model="virtio-net-pci", mac=_first_mac(), timeout=300)
    log.info(f"boot: {res.outcome} after {res.seconds:.0f} s; network marker: "
             f"{res.markers[-1] if res.markers else 'none'}")
    log.info(f"console log: {res.console_log}")
    ok = res.outcome == "login" and res.net_up
    log.info(f"summary: conversion {took:.0f} s, converted guest "
             f"{'boots on virtio with its network up' if ok else 'did NOT boot correctly'}")
    return 0 if ok else 1


def _first_mac() -> str:
    from lxml import etree

    root = etree.parse(os.path.join(OUT, "demo.xml")).getroot()
    mac = root.find("./devices/interface/mac")
    return mac.get("address") if mac is not None else "52:54:00:12:34:56"


if __name__ == "__main__":
    sys.exit(main())
