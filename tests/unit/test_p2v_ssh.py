"""ssh argv, host-key helpers, error messages, and the remote-side text formats."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from pyv2v import hostkeys, ssh
from pyv2v.errors import V2VError
from pyv2v.p2v import remote, wrapper
from pyv2v.p2v.askpass import Askpass
from pyv2v.p2v.config import Config

PASSWORD = "hunter2-secret"


def target(**kw: object) -> ssh.Target:
    base: dict[str, object] = {"host": "conv.example.com", "port": 2222, "user": "admin",
                               "known_hosts": "/tmp/kh"}
    base.update(kw)
    return ssh.Target(**base)  # type: ignore[arg-type]


def all_argvs(t: ssh.Target) -> list[list[str]]:
    return [ssh.ssh_argv(t, "virt-v2v --version"), ssh.ssh_argv(t, "x", tty=True),
            ssh.reverse_forward_argv(t, 50123), ssh.scp_argv(t, ["/tmp/a", "/tmp/b"], "/tmp/d")]


@pytest.mark.parametrize("identity", [None, "/tmp/id"])
def test_never_strict_host_key_checking_no(identity: str | None) -> None:
    for argv in all_argvs(target(identity=identity)) + all_argvs(target(hostkey="SHA256:x")):
        joined = " ".join(argv)
        assert "StrictHostKeyChecking=no" not in joined
        assert "UserKnownHostsFile=/tmp/kh" in joined
        assert "GlobalKnownHostsFile=/dev/null" in joined


def test_reference_options_and_auth_modes() -> None:
    argv = ssh.ssh_argv(target(), "cmd")
    assert argv[:5] == ["ssh", "-p", "2222", "-l", "admin"]
    for opt in ("ConnectTimeout=60", "ServerAliveInterval=300", "ServerAliveCountMax=6",
                "PreferredAuthentications=keyboard-interactive,password",
                "StrictHostKeyChecking=yes"):
        assert opt in argv
    assert argv[-3:] == ["--", "conv.example.com", "cmd"]
    key = ssh.ssh_argv(target(identity="/k", hostkey="SHA256:abc"), "cmd")
    assert "PreferredAuthentications=publickey" in key and key[key.index("-i") + 1] == "/k"
    assert "StrictHostKeyChecking=yes" in key and "BatchMode=yes" in key


def test_reverse_forward_and_scp() -> None:
    fwd = ssh.reverse_forward_argv(target(), 50123)
    assert fwd[fwd.index("-R") + 1] == "0:127.0.0.1:50123" and "-N" in fwd
    assert "ExitOnForwardFailure=yes" in fwd
    scp = ssh.scp_argv(target(host="::1"), ["/tmp/a"], "/tmp/virt-p2v-x")
    assert scp[:4] == ["scp", "-p", "-P", "2222"] and scp[-1] == "admin@[::1]:/tmp/virt-p2v-x/"


def test_password_never_in_argv_or_environment() -> None:
    cfg = Config(server="s", password=PASSWORD)
    ap = Askpass(cfg.password)
    try:
        t = target()
        for argv in all_argvs(t):
            assert PASSWORD not in " ".join(argv)
        env = ap.env()
        assert PASSWORD not in " ".join(env.values())
        assert env["SSH_ASKPASS_REQUIRE"] == "force"
        assert PASSWORD not in os.environ.values()
        # The helper, run the way ssh runs it, gets the password for a password prompt only.
        r = subprocess.run([env["SSH_ASKPASS"], "admin@conv's password: "], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0 and r.stdout == PASSWORD + "\n"
        r = subprocess.run([env["SSH_ASKPASS"], "Are you sure you want to continue (yes/no)?"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and r.stdout == ""
        assert PASSWORD not in Path(env["SSH_ASKPASS"]).read_text()
        assert oct(os.stat(ap.dir).st_mode & 0o777) == "0o700"
    finally:
        ap.close()
    assert not os.path.exists(ap.dir)


def test_allocated_port() -> None:
    text = "Warning: x\nAllocated port 41235 for remote forward to 127.0.0.1:50123\n"
    assert ssh.parse_allocated_port(text) == 41235
    assert ssh.parse_allocated_port("nothing") is None


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    blob = key.with_suffix(".pub").read_text().split()[1]
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(key.with_suffix(".pub"))],
                         capture_output=True, text=True, check=True).stdout
    assert hostkeys.fingerprint(blob) == out.split()[1]


def test_known_hosts_parsing_and_recording(tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    t = target(known_hosts=str(kh))
    hostkeys.record_keys(t, [("ssh-ed25519", "AAAA1")])
    hostkeys.record_keys(target(known_hosts=str(kh), port=22), [("ssh-rsa", "AAAA2")])
    assert hostkeys.known_keys(t) == [("ssh-ed25519", "AAAA1")]
    hostkeys.record_keys(t, [("ssh-ed25519", "AAAA3")])  # replaces, keeps the other host
    text = kh.read_text()
    assert "[conv.example.com]:2222 ssh-ed25519 AAAA3" in text and "AAAA1" not in text
    assert "conv.example.com ssh-rsa AAAA2" in text
    assert oct(kh.stat().st_mode & 0o777) == "0o600"


def test_every_argv_checks_host_keys_strictly() -> None:
    """ssh never records a key itself (it cannot be trusted to: fresh media, no state dir)."""
    for t in (target(), target(identity="/k"), target(hostkey="SHA256:x")):
        for argv in all_argvs(t):
            assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/tmp/kh" in argv
            assert "StrictHostKeyChecking=accept-new" not in argv


def test_trust_on_first_use_records_for_certain(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No state directory yet (fresh boot media): it is created 0700 and the key recorded."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    offered = [("ssh-ed25519", "AAAAC3NzaC1l"), ("ssh-rsa", "AAAAB3NzaC1y")]
    monkeypatch.setattr(hostkeys, "keyscan", lambda t, timeout=10: offered)
    t = target(known_hosts="")
    assert t.known_hosts_file == str(tmp_path / "home/.local/state/pyv2v/known_hosts")
    assert hostkeys.trust_on_first_use(t) == offered
    assert hostkeys.known_keys(t) == offered
    assert oct(os.stat(os.path.dirname(t.known_hosts_file)).st_mode & 0o777) == "0o700"
    assert oct(os.stat(t.known_hosts_file).st_mode & 0o777) == "0o600"
    monkeypatch.setattr(hostkeys, "keyscan", lambda t, timeout=10: [("ssh-ed25519", "b3RoZXI=")])
    assert hostkeys.trust_on_first_use(t) == []  # known: ssh checks it (and refuses another)
    assert hostkeys.known_keys(t) == offered


def test_trust_on_first_use_fails_if_not_recorded(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(hostkeys, "keyscan", lambda t, timeout=10: [("ssh-ed25519", "AAAA1")])
    t = target(known_hosts=str(tmp_path / "file" / "known_hosts"))  # parent is not a dir
    with pytest.raises(V2VError, match="cannot record the host key of conv.example.com:2222"):
        hostkeys.trust_on_first_use(t)


def test_known_hosts_temp_file_is_exclusive(tmp_path: Path) -> None:
    """A planted symlink at a predictable temp name is never followed."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    kh = tmp_path / "kh"
    for name in (f"kh.tmp{os.getpid()}", "kh.tmp", "kh.new", ".kh.tmp"):
        (tmp_path / name).symlink_to(victim)
    hostkeys.record_keys(target(known_hosts=str(kh)), [("ssh-ed25519", "AAAA1")])
    assert victim.read_text() == "precious\n"
    assert not kh.is_symlink() and "AAAA1" in kh.read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == ["kh", "victim"]


@pytest.mark.parametrize("stderr,expect", [
    ("ssh: connect to host x port 2222: Connection refused", "cannot reach"),
    ("ssh: Could not resolve hostname nope: Name or service not known", "cannot reach"),
    ("admin@x: Permission denied (publickey,password).", "authentication as admin"),
    ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.",
     "possible man-in-the-middle"),
    ("something odd", "something odd"),
])
def test_explain(stderr: str, expect: str) -> None:
    assert expect in ssh.explain(stderr, target())


def test_explain_names_what_the_host_is() -> None:
    """A VMX or libvirt source host is not called a conversion server."""
    refused = "ssh: connect to host x port 2222: Connection refused"
    t = dataclasses.replace(target(), role="VMX host")
    assert ssh.explain(refused, t).startswith(f"cannot reach VMX host {t.host}:{t.port}: ")
    assert ssh.explain(refused, target()).startswith("cannot reach conversion server ")


def test_version_rules() -> None:
    assert remote.parse_version("virt-v2v 2.2.0\n") == "2.2.0"
    assert remote.parse_version("virt-v2v 1.42.0rhel=8\n") == "1.42.0rhel=8"
    assert remote.parse_version("bash: virt-v2v: command not found") is None
    remote.check_version("1.28.1")
    remote.check_version("2.2.0")
    with pytest.raises(V2VError, match="too old"):
        remote.check_version("1.26.5")
    with pytest.raises(V2VError, match="major version 3"):
        remote.check_version("3.0.0")


def test_features() -> None:
    info = remote.parse_features("virt-v2v\nlibguestfs-rewrite\ncolours-option\ninput:disk\n"
                                 "output:local\noutput:vdsm\noutput:rhv-upload\noutput:qemu\n",
                                 "2.2.0")
    assert info.colours and info.inputs == ["disk"] and info.outputs == ["local", "qemu"]
    with pytest.raises(V2VError, match="libguestfs-rewrite"):
        remote.parse_features("virt-v2v\n", "2.2.0")


def test_wrapper_and_remote_dir() -> None:
    d = wrapper.remote_dir_name(0)
    assert d.startswith("/tmp/virt-p2v-19700101-") and len(d) == len("/tmp/virt-p2v-19700101-") + 8
    cfg = Config(sudo=True, output_type="local", output_allocation="sparse",
                 output_format="qcow2", output_storage="/var/tmp/out dir",
                 output_misc=["a=1", "b=$x"])
    script = wrapper.wrapper_script(cfg, d, colours=True)
    assert script.startswith("#!/bin/bash -\n")
    assert ("sudo -n virt-v2v -v -x --colours -i libvirtxml -o local -oa sparse -of qcow2 "
            "-os '/var/tmp/out dir' -oo a=1 -oo 'b=$x' --root first physical.xml </dev/null"
            ) in script
    assert script.index("echo 99 > status") < script.index("v2v 2>> $log | tee -a $log")
    for piece in ("printenv > environment", "sudo -n virt-v2v --version > v2v-version",
                  "tail -50 $log", f"cd {d}"):
        assert piece in script
    assert wrapper.control_command(d).endswith(f"exit $(cat {d}/status)")
