"""`make demo`: the whole system on one machine — p2v → ssh → v2v → a booted converted guest.

Run as `python -m pyv2v_harness.demo` (`make demo`), or with `--output libvirt`
(`make demo OUTPUT=libvirt`) for the libvirt demo: `v2v -i disk` into a private libvirtd's
storage pool (no -o: libvirt is the default output), the domain started through libvirt to a
login prompt, and the `virsh -c URI …` lines a user would run shown with their real output;
the daemon is stopped at the end.

1. The demo guest is the debian12-physical fixture (built once, then cached): a Debian 12 install
   that looks like a physical server (device names in fstab/GRUB, no virtio drivers,
   open-vm-tools).
2. A private sshd on 127.0.0.1 plays the conversion server; on its PATH, `virt-v2v` is our `v2v`.
3. `p2v` runs non-interactively with the demo image standing in for the physical disk: it serves
   the disk read-only over NBD through an `ssh -R` tunnel and drives the remote conversion.
4. The converted disk boots under qemu on virtio-blk; the summary says whether it reached a login
   prompt with its network up, and that the source image was not modified.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from lxml import etree

from pyv2v import accel, log, process

from . import bootcheck, libvirtd, loopback
from .fixtures import ensure_image
from .fixtures.builder import sha256_file as sha256

OUT = Path(os.environ.get("PYV2V_DEMO_DIR", "/var/tmp/pyv2v-demo"))
NAME = "p2vdemo"


def p2v_argv(srv: loopback.Server, disk: Path, outdir: Path, name: str = NAME) -> list[str]:
    """A non-interactive p2v run against the loopback server (host key pinned)."""
    return [str(Path(sys.executable).with_name("p2v")), "--server", srv.host, "--port",
            str(srv.port), "--username", "root", "--identity", f"file://{srv.user_key}",
            "--hostkey", srv.fingerprint, "--name", name, "--disk", str(disk), "-o", "local",
            "--os", str(outdir), "--cores", "1", "--memory", "1G"]


def first_mac(xml: Path) -> str:
    mac = etree.parse(str(xml)).getroot().find("./devices/interface/mac")
    return mac.get("address", bootcheck.DEFAULT_MAC) if mac is not None else bootcheck.DEFAULT_MAC


def main() -> int:
    log.configure(prog="demo")
    a = accel.detect()
    log.info(f"accelerator: {a.name} ({a.reason})")
    log.info("step 1/4: the demo 'physical' machine's disk (built once, then cached) …")
    image = ensure_image("debian12-physical")
    before = sha256(image)
    log.info(f"  {image}")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    log.info("step 2/4: a private conversion server (sshd on 127.0.0.1, virt-v2v = our v2v)")
    srv = loopback.start_conversion_server(OUT / "server-bin")
    try:
        log.info(f"  ssh root@{srv.host} -p {srv.port}, host key {srv.fingerprint}")
        argv = p2v_argv(srv, image, OUT)
        log.info("step 3/4: $ " + " ".join(argv))
        start = time.monotonic()
        rc = process.spawn(argv, stdout=None, stderr=None).wait()
        took = time.monotonic() - start
    finally:
        srv.stop()
        shutil.rmtree(OUT / "server-bin", ignore_errors=True)
    if rc != 0:
        log.error(f"p2v failed (exit {rc})")
        return rc
    disk, xml = OUT / f"{NAME}-sda", OUT / f"{NAME}.xml"
    st = disk.stat()
    log.info(f"  {disk}: {st.st_size / 1024**3:.1f} GiB virtual, "
             f"{st.st_blocks * 512 / 1024**2:.0f} MiB written; {xml}")
    log.info("step 4/4: booting the converted guest on virtio-blk (qemu, serial console) …")
    res = bootcheck.boot(disk, bus="virtio-blk", nic_model="virtio-net-pci", mac=first_mac(xml),
                         timeout=600, console_log=OUT / "console.log")
    unchanged = sha256(image) == before
    ok = res.outcome == "login" and res.net_up and unchanged
    log.info("")
    log.info("summary")
    log.info(f"  p2v → v2v conversion:  {took:.0f} s, exit {rc}")
    log.info(f"  boot on virtio:        {res.outcome} after {res.seconds:.0f} s "
             f"(console log {res.console_log})")
    log.info(f"  network in the guest:  {res.markers[-1] if res.markers else 'no marker'}")
    log.info(f"  source disk unchanged: {'yes' if unchanged else 'NO'} (sha256)")
    log.info(f"  run it with libvirt:   virsh define {xml} && virsh start {NAME}  (or convert "
             "with -o libvirt, the default: a pool volume and a domain of the type this host runs)")
    log.info(f"  result: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


LV_NAME = "v2vdemo"


def virsh(uri: str, *args: str) -> None:
    """Run and show one `virsh -c URI …` line the user would type."""
    log.info(f"  $ virsh -c '{uri}' {' '.join(args)}")
    res = process.run(["virsh", "-c", uri, *args], check=False, timeout=60)
    for line in (res.out + res.err).strip().splitlines():
        log.info(f"      {line}")


def libvirt_main() -> int:
    log.configure(prog="demo")
    log.info(f"accelerator: {accel.detect().name}")
    log.info("step 1/4: the demo guest's disk (built once, then cached) …")
    image = ensure_image("debian12-physical")
    before = sha256(image)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    log.info("step 2/4: a private libvirtd (its own socket and state) with a pool 'default'")
    daemon = libvirtd.start()
    try:
        daemon.add_dir_pool("default", OUT / "pool")
        uri = daemon.uri
        argv = [str(Path(sys.executable).with_name("v2v")), "-i", "disk", str(image),
                "-on", LV_NAME, "-oc", uri]
        log.info("step 3/4: $ " + " ".join(argv))
        start = time.monotonic()
        rc = process.spawn(argv, stdout=None, stderr=None).wait()
        took = time.monotonic() - start
        if rc != 0:
            log.error(f"v2v failed (exit {rc})")
            return rc
        for args in (("list", "--all"), ("vol-list", "default"), ("domblklist", LV_NAME)):
            virsh(uri, *args)
        log.info(f"step 4/4: $ virsh -c '{uri}' start {LV_NAME}  (console to a file, "
                 "user networking) …")
        res = daemon.boot(LV_NAME, OUT / "console.log", timeout=600)
    finally:
        daemon.stop()
    unchanged = sha256(image) == before
    ok = res.outcome == "login" and res.net_up and unchanged
    log.info("")
    log.info("summary")
    log.info(f"  v2v -o libvirt:        {took:.0f} s, exit {rc}; volume in {OUT / 'pool'}")
    log.info(f"  boot through libvirt:  {res.outcome} after {res.seconds:.0f} s "
             f"(console log {res.console_log})")
    log.info(f"  network in the guest:  {res.markers[-1] if res.markers else 'no marker'}")
    log.info(f"  source disk unchanged: {'yes' if unchanged else 'NO'} (sha256)")
    log.info("  on a host with libvirt: v2v -i disk GUEST.img (pool 'default' of qemu:///system)"
             f", then virsh start {LV_NAME}; virsh console {LV_NAME}")
    log.info("  the private libvirtd is stopped")
    log.info(f"  result: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--output", "libvirt"]:
        sys.exit(libvirt_main())
    if sys.argv[1:]:
        sys.exit(f"demo: unknown arguments {' '.join(sys.argv[1:])} (OUTPUT=libvirt or none)")
    sys.exit(main())
