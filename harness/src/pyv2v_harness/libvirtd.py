"""A private libvirtd for tests and the demo: its own socket, state, config and pools.

`start()` runs Debian's monolithic `libvirtd` (package libvirt-daemon + libvirt-daemon-driver-qemu)
as root in a private mount namespace (`unshare --mount`) where /etc/libvirt, /var/lib/libvirt,
/run/libvirt, /var/cache/libvirt and /var/log/libvirt are bind mounts of directories under one
temp dir, so several daemons (this test, another helper's `-i libvirt` test) never share state
and the host's own libvirt (if any) is untouched.  The socket is in that temp dir too:
`Libvirtd.uri` is ``qemu+unix:///system?socket=DIR/sock/libvirt-sock``.

The qemu driver is configured to run guests as root with no security driver, no dynamic
ownership, no cgroups and console/stdio logs to plain files (no virtlogd): nothing of that
needs a service manager.  The qemu driver insists that its compiled-in user `libvirt-qemu`
exists even when told to use root, so the namespace also sees a copy of /etc/passwd and
/etc/group with that account added (the host's files are not changed).

`Libvirtd.boot(name, console_log)` starts a defined domain through libvirt and reads its
serial console like `bootcheck.boot` does (login prompt + the fixture's marker line): the
domain is first redefined for observation only — its serial console to a file, its NICs on
qemu's user network (same MACs, so DHCP works without a libvirt network) — then destroyed.

Mounts made on the host after `start()` are not seen by the daemon (the host's / is private):
a test that needs a special pool filesystem (read-only, tiny) mounts it first, then starts a
daemon.  `Libvirtd.stop()` destroys and undefines every domain, stops the daemon, kills any qemu
it left and removes the temp dir.  The daemon is spawned through pyv2v.process (no orphans).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from pyv2v import process
from pyv2v.errors import V2VError

from . import bootcheck

BINDS = {"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "run": "/run/libvirt",
         "cache": "/var/cache/libvirt", "log": "/var/log/libvirt",
         "passwd": "/etc/passwd", "group": "/etc/group"}

QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
cgroup_controllers = [ ]
namespaces = [ ]
"""

# Runs inside the new mount namespace: bind the private dirs over the daemon's paths, then exec.
START_SCRIPT = """\
set -e
D=$1
shift
while [ $# -gt 1 ]; do
  [ -e "$2" ] || mkdir -p "$2"
  mount --bind "$D/$1" "$2"
  shift 2
done
exec libvirtd --config "$D/libvirtd.conf" --pid-file "$D/libvirtd.pid"
"""


def available() -> bool:
    return shutil.which("libvirtd") is not None and shutil.which("unshare") is not None


@dataclass
class Libvirtd:
    dir: Path
    child: process.Child

    @property
    def socket(self) -> Path:
        return self.dir / "sock" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def log(self) -> Path:
        return self.dir / "libvirtd.log"

    def connect(self) -> Any:
        import libvirt

        return libvirt.open(self.uri)

    def add_dir_pool(self, name: str, path: str | Path) -> None:
        """Define and start a directory pool `name` at `path` (made if missing)."""
        os.makedirs(path, mode=0o711, exist_ok=True)
        conn = self.connect()
        try:
            pool = conn.storagePoolDefineXML(
                f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target>"
                "</pool>", 0)
            pool.create(0)
        finally:
            conn.close()

    def domain_names(self) -> list[str]:
        conn = self.connect()
        try:
            return sorted(d.name() for d in conn.listAllDomains(0))
        finally:
            conn.close()

    def boot(self, name: str, console_log: Path, timeout: float = 300.0,
             marker_grace: float = 90.0) -> bootcheck.BootResult:
        """Start domain `name` (console to a file, user networking) and watch it boot."""
        conn = self.connect()
        try:
            dom = conn.lookupByName(name)
            conn.defineXML(observable_xml(dom.XMLDesc(0), console_log))
            console_log.write_bytes(b"")
            start = time.monotonic()
            conn.lookupByName(name).create()
            login_at: float | None = None
            while True:
                time.sleep(0.5)
                text = console_log.read_bytes().decode(errors="replace")
                now = time.monotonic()
                outcome, detail = bootcheck.classify(text, want_marker=True), ""
                if outcome is None and bootcheck.classify(text) == "login":
                    login_at = login_at or now
                    if now - login_at >= marker_grace:
                        outcome, detail = "login", "no marker line"
                if outcome is None and not conn.lookupByName(name).isActive():
                    outcome, detail = "qemu-error", "the domain stopped"
                elif outcome is None and now - start >= timeout:
                    outcome, detail = "timeout", f"no outcome within {timeout:g} s"
                if outcome:
                    return bootcheck.BootResult(outcome, bootcheck.markers(text),
                                                round(now - start, 1), console_log, detail)
        finally:
            try:
                d = conn.lookupByName(name)
                if d.isActive():
                    d.destroy()
            finally:
                conn.close()

    def stop(self) -> None:
        import libvirt

        if self.child.poll() is None:
            try:
                conn = self.connect()
                for dom in conn.listAllDomains(0):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
                conn.close()
            except libvirt.libvirtError:
                pass
        self.child.terminate(grace=10)
        for pidfile in (self.dir / "run" / "qemu").glob("*.pid"):  # a qemu libvirtd left
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def observable_xml(xml: str, console_log: Path) -> str:
    """`xml` with its serial console written to `console_log` and its NICs on user networking."""
    root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False))
    devices = root.find("./devices")
    assert devices is not None
    for el in devices.findall("./serial") + devices.findall("./console"):
        devices.remove(el)
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=str(console_log))
    etree.SubElement(serial, "target", port="0")
    for nic in devices.findall("./interface"):
        nic.set("type", "user")
        for src in nic.findall("./source"):
            nic.remove(src)
    return etree.tostring(root, encoding="unicode")


def _passwd_with_qemu_user(d: Path) -> None:
    for name, line in (("passwd", "libvirt-qemu:x:64055:64055:libvirt qemu (pyv2v test "
                                  "daemon):/var/lib/libvirt:/usr/sbin/nologin"),
                       ("group", "libvirt-qemu:x:64055:")):
        text = Path("/etc", name).read_text()
        if not any(ln.startswith("libvirt-qemu:") for ln in text.splitlines()):
            text = text.rstrip("\n") + "\n" + line + "\n"
        (d / name).write_text(text)


def start(timeout: float = 30.0) -> Libvirtd:
    """Start a private libvirtd and wait until its socket answers."""
    if os.geteuid() != 0:
        raise V2VError("the private libvirtd runs as root (mount namespace, qemu as root)")
    if not available():
        raise V2VError("libvirtd is not installed (apt-get install libvirt-daemon "
                       "libvirt-daemon-driver-qemu)")
    d = Path(tempfile.mkdtemp(prefix="pyv2v-libvirtd-"))
    os.chmod(d, 0o711)
    for sub in ("etc", "lib", "run", "cache", "log", "sock"):
        (d / sub).mkdir(mode=0o700)
    (d / "etc" / "qemu.conf").write_text(QEMU_CONF)
    _passwd_with_qemu_user(d)
    (d / "libvirtd.conf").write_text(
        f'unix_sock_dir = "{d}/sock"\nunix_sock_rw_perms = "0700"\n'
        f'unix_sock_ro_perms = "0700"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
        f'log_outputs = "3:file:{d}/libvirtd.log"\n')
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", START_SCRIPT,
            "sh", str(d)]
    for sub, target in BINDS.items():
        argv += [sub, target]
    with open(d / "daemon.out", "w") as out:
        child = process.spawn(argv, stdout=out.fileno(), stderr=out.fileno())
    daemon = Libvirtd(d, child)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            break
        if daemon.socket.exists():
            try:
                daemon.connect().close()
                return daemon
            except Exception:  # noqa: BLE001 - libvirt.libvirtError until it is ready
                pass
        time.sleep(0.1)
    detail = (d / "daemon.out").read_text().strip().splitlines()[-1:]
    daemon.stop()
    raise V2VError(f"the private libvirtd did not start: {detail}")
