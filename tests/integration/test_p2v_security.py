"""p2v security against a real sshd (fake virt-v2v): host keys on fresh boot media, no secrets
and nothing readable by others on the conversion server (issue 10)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from p2v_fixtures import Sshd

from pyv2v_harness import loopback

URL_SECRET = "url-Secret-4711"


def disk_image(tmp: Path) -> Path:
    image = tmp / "disk.img"
    with open(image, "wb") as f:
        f.truncate(4 << 20)
        f.write(os.urandom(4096))
    return image


def run_p2v(sshd: Sshd, tmp: Path, home: Path, *, cmdline: str, extra_path: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Kernel mode (--cmdline), verbose (every argv is logged), HOME as on fresh boot media."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"}
    env.update(HOME=str(home), TMPDIR=str(tmp))
    if extra_path:
        env["PATH"] = f"{extra_path}:{env['PATH']}"
    argv = [sys.executable, "-m", "pyv2v.p2v.cli", "-v", "--cmdline", cmdline,
            "--disk", str(disk_image(tmp))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)


def password_cmdline(sshd: Sshd, name: str) -> str:
    assert sshd.password_user and sshd.password
    return (f"BOOT_IMAGE=/vmlinuz quiet p2v.server={sshd.host} p2v.port={sshd.port} "
            f"p2v.username={sshd.password_user} p2v.password={sshd.password} p2v.name={name}")


def ssh_argvs(log: str) -> list[list[str]]:
    """Every ssh/scp command line p2v ran (process.py logs them with -v)."""
    found = []
    for line in log.splitlines():
        m = re.search(r"\] (?:run|spawn): (.*)$", line)
        if m:
            argv = m.group(1).split()
            prog = next((a for a in argv if a in ("ssh", "scp", "ssh-keyscan")), None)
            if prog:
                found.append(argv[argv.index(prog):])
    return found


def test_fresh_media_host_key_recorded_then_impostor_refused(
        sshd_factory: Callable[..., Sshd], tmp_path: Path) -> None:
    s = sshd_factory(password_user=True)
    home = tmp_path / "home"
    home.mkdir()  # boot media: no ~/.local/state at all
    kh = home / ".local/state/pyv2v/known_hosts"
    r = run_p2v(s, tmp_path, home, cmdline=password_cmdline(s, "fresh"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert kh.read_text().split() == [f"[127.0.0.1]:{s.port}", *s.host_key]
    assert stat.S_IMODE(kh.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    banner = [ln for ln in out.splitlines() if "NEW HOST KEY" in ln]
    assert banner and s.fingerprint in banner[0] and str(kh) in banner[0]
    argvs = ssh_argvs(r.stderr)
    # Scanned (one key type per connection) and recorded before any login, never after.
    scans = 0
    while scans < len(argvs) and argvs[scans][0] == "ssh-keyscan":
        scans += 1
    assert scans >= 1, argvs
    assert all("-t" in a for a in argvs[:scans]), argvs[:scans]
    logins = argvs[scans:]
    assert {a[0] for a in logins} == {"ssh", "scp"} and len(logins) >= 4  # test, data, ctl…
    for argv in logins:
        assert "StrictHostKeyChecking=yes" in argv, argv
        assert f"UserKnownHostsFile={kh}" in argv, argv

    # Another sshd, another host key, the same address and port: a man in the middle.
    s.child.terminate()
    impostor_dir = tmp_path / "impostor"
    impostor_dir.mkdir()
    loopback.keygen(impostor_dir / "host_key")
    config = (s.dir / "sshd_config").read_text()
    assert f"HostKey {s.dir}/host_key\n" in config
    (impostor_dir / "sshd_config").write_text(
        config.replace(f"HostKey {s.dir}/host_key\n", f"HostKey {impostor_dir}/host_key\n"))
    log = impostor_dir / "sshd.log"
    with open(log, "w") as f:
        impostor = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f",
                                     str(impostor_dir / "sshd_config")], stdout=f,
                                    stderr=subprocess.STDOUT)
    try:
        loopback.wait_banner(s.port)
        r = run_p2v(s, tmp_path, home, cmdline=password_cmdline(s, "impostor"))
    finally:
        impostor.send_signal(signal.SIGTERM)
        impostor.wait(30)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in out
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("p2v: error: ")]
    assert len(errors) == 1, out
    assert f"host key verification failed for 127.0.0.1:{s.port}" in errors[0]
    assert "man-in-the-middle" in errors[0]
    assert kh.read_text().split() == [f"[127.0.0.1]:{s.port}", *s.host_key]  # unchanged
    impostor_log = log.read_text()
    assert "Connection from 127.0.0.1" in impostor_log  # it was asked, and refused at once:
    assert "password for" not in impostor_log  # the password never reached it
    for argv in ssh_argvs(r.stderr):
        if argv[0] != "ssh-keyscan":
            assert "StrictHostKeyChecking=yes" in argv and f"UserKnownHostsFile={kh}" in argv


def test_no_secrets_and_nothing_readable_on_the_server(p2v_sshd: Sshd, tmp_path: Path) -> None:
    s = p2v_sshd
    assert s.password
    cmdline = password_cmdline(s, "secrets")
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    (fakebin / "dmesg").write_text(  # what the kernel logs on boot media
        "#!/bin/sh\n"
        f"echo {shlex.quote('[    0.000000] Kernel command line: ' + cmdline)}\n"
        f"echo {shlex.quote('[    0.1] Unknown kernel command line parameters ' + repr(cmdline))}\n"
        f"echo '[    0.200000] with environment: p2v.password={s.password}'\n"
        f"echo '[    1.000000] fetching https://keys:{URL_SECRET}@example.com/id'\n")
    (fakebin / "dmesg").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    r = run_p2v(s, tmp_path, home, cmdline=cmdline, extra_path=fakebin)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    rdir = Path(next(ln.split(": ", 1)[1] for ln in r.stdout.splitlines()
                     if "remote log directory: " in ln))
    assert re.fullmatch(r"/tmp/virt-p2v-\d{8}-[0-9a-z]{8}", str(rdir))
    assert stat.S_IMODE(rdir.stat().st_mode) == 0o700
    files = sorted(rdir.iterdir())
    names = {f.name for f in files}
    assert {"dmesg", "physical.xml", "virt-v2v-wrapper.sh", "status", "environment", "time",
            "virt-v2v-conversion-log.txt", "fake-v2v-result.json"} <= names
    for f in files:
        mode = stat.S_IMODE(f.stat().st_mode)
        assert mode == (0o700 if f.name == "virt-v2v-wrapper.sh" else 0o600), (f, oct(mode))
        text = f.read_text(errors="replace")
        assert s.password not in text and URL_SECRET not in text, f
    dmesg = (rdir / "dmesg").read_text()
    assert "Kernel command line: BOOT_IMAGE=/vmlinuz" in dmesg and "p2v.password=<hidden>" in dmesg
    assert "https://keys:<hidden>@example.com/id" in dmesg
    assert s.password not in out and URL_SECRET not in out  # -v logs every argv
    assert s.password not in s.log.read_text()
