"""Test connection, authentication and host keys against a real private sshd (fake virt-v2v)."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from p2v_fixtures import Sshd, p2v_children, ssh_free_port

from pyv2v import hostkeys, ssh
from pyv2v.errors import V2VError
from pyv2v.p2v.conversion import Conversion
from pyv2v.p2v.engine import RealEngine
from pyv2v.p2v.events import Event, Finished, HostKey, Status


def test_connection(cfg_kw: dict[str, object] | None, sshd: Sshd, tmp: Path) -> list[Event]:
    events: list[Event] = []
    conv = Conversion(sshd.config(tmp, **(cfg_kw or {})))
    conv.subscribe(events.append)
    try:
        conv.test_connection()
    finally:
        conv.close()
    return events


test_connection.__test__ = False  # type: ignore[attr-defined]


def test_key_auth_and_tofu(p2v_sshd: Sshd, tmp_path: Path) -> None:
    events = test_connection(None, p2v_sshd, tmp_path)
    info = [e for e in events if type(e).__name__ == "ServerInfoEvent"]
    assert info and info[0].version == "2.2.0" and "local" in info[0].outputs  # type: ignore
    keys = [e for e in events if isinstance(e, HostKey)]
    assert len(keys) == 1 and not keys[0].pinned
    assert keys[0].fingerprints == (f"ssh-ed25519 {p2v_sshd.fingerprint}",)
    recorded = (tmp_path / "known_hosts").read_text()
    assert f"[127.0.0.1]:{p2v_sshd.port} {p2v_sshd.host_key[0]} {p2v_sshd.host_key[1]}" \
        in recorded
    # Second time: the key is known, nothing new is reported.
    events = test_connection(None, p2v_sshd, tmp_path)
    assert not [e for e in events if isinstance(e, HostKey)]
    assert p2v_children() == []


def test_pinned_host_key(p2v_sshd: Sshd, tmp_path: Path) -> None:
    events = test_connection({"hostkey": p2v_sshd.fingerprint}, p2v_sshd, tmp_path)
    keys = [e for e in events if isinstance(e, HostKey)]
    assert keys and keys[0].pinned


def test_pinned_mismatch_refused(p2v_sshd: Sshd, tmp_path: Path) -> None:
    wrong = "SHA256:" + "A" * 43
    with pytest.raises(V2VError, match="does not match the pinned fingerprint"):
        test_connection({"hostkey": wrong}, p2v_sshd, tmp_path)
    assert not (tmp_path / "known_hosts").exists()


def test_changed_host_key_refused(p2v_sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    t = ssh.Target("127.0.0.1", p2v_sshd.port, known_hosts=str(tmp_path / "known_hosts"))
    hostkeys.record_keys(t, [(kind, blob)])
    with pytest.raises(V2VError, match="host key verification failed.*man-in-the-middle"):
        test_connection(None, p2v_sshd, tmp_path)


def test_password_auth(p2v_sshd: Sshd, tmp_path: Path) -> None:
    assert p2v_sshd.password_user and p2v_sshd.password
    events = test_connection({"identity": None, "username": p2v_sshd.password_user,
                              "password": p2v_sshd.password}, p2v_sshd, tmp_path)
    assert any(type(e).__name__ == "ServerInfoEvent" for e in events)
    log = p2v_sshd.log.read_text()
    assert p2v_sshd.password not in log
    assert f"Accepted password for {p2v_sshd.password_user}" in log


def test_wrong_password(p2v_sshd: Sshd, tmp_path: Path) -> None:
    with pytest.raises(V2VError, match=f"authentication as {p2v_sshd.password_user} .*password "
                                       "refused"):
        test_connection({"identity": None, "username": p2v_sshd.password_user,
                         "password": "wrong-" + (p2v_sshd.password or "")}, p2v_sshd, tmp_path)


def test_wrong_key(p2v_sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "id_other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    with pytest.raises(V2VError, match="authentication as root .*key .* refused"):
        test_connection({"identity": f"file://{other}"}, p2v_sshd, tmp_path)


def test_identity_url_errors(p2v_sshd: Sshd, tmp_path: Path) -> None:
    with pytest.raises(V2VError, match="cannot fetch the ssh identity"):
        test_connection({"identity": f"file://{tmp_path}/missing"}, p2v_sshd, tmp_path)
    with pytest.raises(V2VError, match="unsupported URL scheme"):
        test_connection({"identity": "ftp://x/id"}, p2v_sshd, tmp_path)


def test_unreachable(p2v_sshd: Sshd, tmp_path: Path) -> None:
    cfg_port = ssh_free_port()  # nothing listens there
    with pytest.raises(V2VError, match=f"cannot reach conversion server 127.0.0.1:{cfg_port}"):
        test_connection({"port": cfg_port}, p2v_sshd, tmp_path)


def test_sudo_needs_password(p2v_sshd: Sshd, tmp_path: Path) -> None:
    with pytest.raises(V2VError, match="sudo for user .* requires a password"):
        test_connection({"identity": None, "username": p2v_sshd.password_user,
                         "password": p2v_sshd.password, "sudo": True}, p2v_sshd, tmp_path)


def test_no_virt_v2v(sshd_factory: Callable[..., Sshd], tmp_path: Path) -> None:
    s = sshd_factory(fake_version=None, path=["/nonexistent-p2v-test"])
    with pytest.raises(V2VError, match="virt-v2v is not installed on the conversion server"):
        test_connection(None, s, tmp_path)


@pytest.mark.parametrize("version,match", [("1.26.0", "too old"), ("3.1.0", "major version 3")])
def test_incompatible_versions(sshd_factory: Callable[..., Sshd], tmp_path: Path,
                               version: str, match: str) -> None:
    s = sshd_factory(fake_version=version)
    with pytest.raises(V2VError, match=match):
        test_connection(None, s, tmp_path)


def test_unsupported_output_mode(p2v_sshd: Sshd, tmp_path: Path) -> None:
    with pytest.raises(V2VError, match="has no output mode -o vmware"):
        test_connection({"output_type": "vmware"}, p2v_sshd, tmp_path)


@contextlib.contextmanager
def key_server(directory: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[tuple[str, list[str]]]:
    """An https server (self-signed certificate, trusted through SSL_CERT_FILE) for the files
    of `directory`: yields (base URL, paths requested so far)."""
    cert, key = tmp / "cert.pem", tmp / "cert-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                    str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(directory), **kw)

        def log_message(self, *a: Any) -> None:
            requested.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", requested
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_identity_over_https(p2v_sshd: Sshd, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    with key_server(p2v_sshd.dir, tmp_path, monkeypatch) as (base, _):
        url = f"{base}/user_key"
        events = test_connection({"identity": url}, p2v_sshd, tmp_path)
        assert any(type(e).__name__ == "ServerInfoEvent" for e in events)
        with pytest.raises(V2VError, match="cannot fetch the ssh identity"):
            test_connection({"identity": url + "-missing"}, p2v_sshd, tmp_path)


def test_test_connection_and_run_share_one_session(p2v_sshd: Sshd, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine opens ONE ssh session (identity fetched once) for the test and the run;
    the run exports the disk with the NBD server named in the configuration."""
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(4 << 20)
    engine = RealEngine()
    servers: list[str] = []

    def observe(event: Event) -> None:
        events.append(event)
        if isinstance(event, Status) and event.text == "Doing conversion":
            servers.extend(a for c in p2v_children() for a in c.argv
                           if a in ("nbdkit", "qemu-nbd"))

    with key_server(p2v_sshd.dir, tmp_path, monkeypatch) as (base, requested):
        cfg = p2v_sshd.config(tmp_path, identity=f"{base}/user_key", disks=[str(image)],
                              nbd_server="qemu-nbd")
        events: list[Event] = []
        try:
            info = engine.test_connection(cfg, events.append)
            assert info.version == "2.2.0"
            conv = engine.conversion(cfg, None)
            conv.subscribe(observe)
            result = conv.run()
        finally:
            engine.close()
    assert result.ok, result.message
    assert [e for e in events if isinstance(e, Finished)] == [result]
    assert servers == ["qemu-nbd"]
    assert requested == ["/user_key"]  # one session: the key was fetched once
    assert engine.sessions_opened == 1
    assert p2v_children() == []
