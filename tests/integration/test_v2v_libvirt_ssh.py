"""`-i libvirt -ic qemu+ssh://…` against real components, without a conversion.

The "remote host" is the loopback sshd (pyv2v_harness.loopback) in front of a private libvirtd
(pyv2v_harness.libvirtd): the URI's ``socket=`` points libvirt's ``nc -U`` (``proxy=netcat``)
at the private daemon's socket.  A shut-off domain with a qcow2 and a raw disk: --print-source
shows it with both disks on nbdkit-ssh sockets and the host key recorded on first use; the
disks read through those sockets are byte-identical to the files; a changed host key is refused
by libvirt's libssh check (one line) and by nbdkit's; a paused domain is refused.  No guest is
converted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from v2v_helpers import assert_one_line_error, run_v2v

from pyv2v import hostkeys, process, ssh
from pyv2v.v2v.inputs import ssh_disks
from pyv2v_harness import libvirtd, loopback

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="libvirtd and sshd run as root")]

MAC = "52:54:00:4c:11:07"


@dataclass
class Remote:
    daemon: libvirtd.Libvirtd
    sshd: loopback.Server
    qcow2: Path
    raw: Path
    state: Path

    def uri(self, name: str = "qemu+ssh") -> str:
        return (f"{name}://root@{self.sshd.host}:{self.sshd.port}/system?"
                f"socket={self.daemon.socket}&proxy=netcat")

    @property
    def io(self) -> str:
        return f"ssh-identity={self.sshd.user_key}"


def domain_xml(name: str, qcow2: Path, raw: Path) -> str:
    disks = "".join(f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
                    f"<source file='{p}'/><target dev='{dev}' bus='virtio'/></disk>"
                    for fmt, p, dev in (("qcow2", qcow2, "vda"), ("raw", raw, "vdb")))
    return (f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory>"
            "<vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>"
            f"<devices>{disks}<interface type='user'><mac address='{MAC}'/>"
            "<model type='virtio'/></interface></devices></domain>")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    tmp = tmp_path_factory.mktemp("libvirt-ssh")
    raw = tmp / "data.raw"
    with open(raw, "wb") as f:  # a recognisable pattern in every MiB
        for i in range(8):
            f.write(f"pyv2v-remote-{i:04d}".encode().ljust(1 << 20, b"\xa5"))
    qcow2 = tmp / "root.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", str(raw), str(qcow2)],
                   check=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(tmp / "state"))  # a fresh pyv2v known_hosts
        d = libvirtd.start()
        try:
            srv = loopback.start()
            try:
                conn = d.connect()
                conn.defineXML(domain_xml("remote1", qcow2, raw))
                conn.close()
                yield Remote(d, srv, qcow2, raw, tmp / "state")
            finally:
                srv.stop()
        finally:
            d.stop()


def test_print_source_over_ssh(remote: Remote) -> None:
    res = run_v2v("-i", "libvirt", "-ic", remote.uri(), "-io", remote.io, "remote1",
                  "--print-source", timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert f"Recorded the host key of 127.0.0.1:{remote.sshd.port}" in out, out
    assert remote.sshd.fingerprint in out, out
    assert res.stdout.count("nbd+unix:///?socket=") == 2, res.stdout
    assert "remote1" in res.stdout and MAC in res.stdout and "qcow2" in res.stdout, res.stdout
    # the recorded key is the server's own, in pyv2v's known_hosts (not ~/.ssh)
    t = ssh.Target(host="127.0.0.1", port=remote.sshd.port)
    assert hostkeys.known_keys(t) == [remote.sshd.host_key]
    # again with the key known: nothing recorded, same answer (xen+ssh's sibling form)
    res = run_v2v("-i", "libvirt", "-ic", remote.uri("qemu+libssh"), "-io", remote.io,
                  "remote1", "--print-source", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Recorded the host key" not in res.stdout + res.stderr


def test_remote_disks_read_through_nbdkit_ssh(remote: Remote, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import nbd as libnbd

    from pyv2v.v2v.inputs.base import InputOptions
    from pyv2v.v2v.inputs.libvirt import LibvirtInput

    monkeypatch.setenv("PYV2V_TMPDIR", str(tmp_path))  # the sockets' directory
    before = process.live_children()  # the daemons of the fixture: not ours to end
    try:
        src = LibvirtInput().source(InputOptions(
            args=("remote1",), input_conn=remote.uri(), extra={"ssh-identity":
                                                               str(remote.sshd.user_key)}))
        assert [(d.format, d.target_dev) for d in src.disks] == [("qcow2", "vda"),
                                                                  ("raw", "vdb")]
        for disk, local in zip(src.disks, (remote.qcow2, remote.raw), strict=True):
            assert disk.location.startswith("nbd+unix:///?socket="), disk.location
            h = libnbd.NBD()
            h.connect_uri(disk.location)
            assert h.is_read_only()
            data = local.read_bytes()
            assert h.get_size() == len(data)
            for off in (0, len(data) // 2, len(data) - 4096):
                assert h.pread(4096, off) == data[off:off + 4096], (local, off)
            h.shutdown()
        assert src.nics[0].mac == MAC
    finally:
        for child in process.live_children():
            if child not in before:  # the nbdkit servers
                child.terminate()


def test_changed_host_key_refused(remote: Remote, tmp_path: Path) -> None:
    """A key that differs from the recorded one: libvirt's libssh check refuses, one line."""
    state = tmp_path / "state"
    other = tmp_path / "other_host_key"
    kind, blob = loopback.keygen(other)
    t = ssh.Target(host="127.0.0.1", port=remote.sshd.port,
                   known_hosts=str(state / "pyv2v" / "known_hosts"))
    hostkeys.record_keys(t, [(kind, blob)])
    res = run_v2v("-i", "libvirt", "-ic", remote.uri(), "-io", remote.io, "remote1",
                  "--print-source", timeout=300, env={"XDG_STATE_HOME": str(state)})
    line = assert_one_line_error(res, "cannot connect to libvirt at", remote.uri())
    assert "nbd+unix" not in res.stdout
    print(line)
    assert hostkeys.known_keys(t) == [(kind, blob)]  # nothing was replaced
    # the disks' path checks the same known_hosts: nbdkit's ssh plugin (which connects when a
    # client does) refuses to open the disk
    import nbd as libnbd

    t = ssh.Target(host="127.0.0.1", port=remote.sshd.port, identity=str(remote.sshd.user_key),
                   known_hosts=t.known_hosts)
    before = process.live_children()
    try:
        loc = ssh_disks.serve(t, str(remote.raw), str(tmp_path), 0, "-i libvirt")
        with pytest.raises(libnbd.Error, match="handshake"):
            libnbd.NBD().connect_uri(loc)
    finally:
        for child in process.live_children():
            if child not in before:
                child.terminate()


def test_paused_domain_refused_over_ssh(remote: Remote) -> None:
    import libvirt

    conn = remote.daemon.connect()
    dom = conn.lookupByName("remote1")
    try:
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        res = run_v2v("-i", "libvirt", "-ic", remote.uri(), "-io", remote.io, "remote1",
                      "--print-source", timeout=300)
        print(assert_one_line_error(res, "domain remote1 is paused", "must be shut down"))
    finally:
        if dom.isActive():
            dom.destroy()
        conn.close()


@pytest.mark.parametrize("uri,needle", [
    ("qemu+tcp://127.0.0.1:1/system", "cannot read disks through"),
    ("qemu+ssh://root@127.0.0.1/system?no_verify=1", "no_verify= is set by v2v"),
    ("qemu+ssh://root@127.0.0.1/system?known_hosts=/dev/null", "known_hosts= is set by v2v"),
])
def test_unsupported_remote_uris_one_line(uri: str, needle: str, tmp_path: Path) -> None:
    key = tmp_path / "key"
    loopback.keygen(key)
    res = run_v2v("-i", "libvirt", "-ic", uri, "-io", f"ssh-identity={key}", "guest",
                  "--print-source", timeout=120)
    print(assert_one_line_error(res, needle))
