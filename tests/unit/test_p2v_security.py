"""p2v security rules without a server: scrubbed uploads, private files, https-only identity
URLs, remote text never rendered as UI markup (issue 10)."""

from __future__ import annotations

import http.server
import os
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.p2v import wrapper
from pyv2v.p2v.config import Config
from pyv2v.p2v.redact import redact
from pyv2v.p2v.session import fetch_identity

from .test_tui_support import FakeEngine, base_config, drive, make_app, push, text_of, until

SECRET = "Tr0ub4dor-and-3"
CMDLINE = (f'BOOT_IMAGE=/vmlinuz ro p2v.server=conv p2v.password={SECRET} '
           f'p2v.auth.password="{SECRET} with space" p2v.sudo_password={SECRET}x '
           f'p2v.identity=https://keys:{SECRET}@example.com/id p2v.o=local quiet')
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
MARKUP = "[bold]boom[/bold] [@click=app.quit]quit now[/] [red"


# ---- scrubbing -------------------------------------------------------------------------

def test_redact_kernel_command_line_and_urls() -> None:
    text = redact(f"[    0.0] Kernel command line: {CMDLINE}\n    p2v.password={SECRET}\n")
    assert SECRET not in text
    assert "p2v.password=<hidden>" in text and 'p2v.auth.password=<hidden>' in text
    assert "https://keys:<hidden>@example.com/id" in text
    assert "p2v.server=conv" in text and "p2v.o=local quiet" in text  # the rest is kept
    assert redact("hello", [SECRET]) == "hello"
    assert redact(f"echo {SECRET}!", [SECRET]) == "echo <hidden>!"
    assert redact("ab", ["a"]) == "ab"  # too short to hide literally


def test_uploaded_files_private_and_scrubbed(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dmesg"
    fake.write_text(f"#!/bin/sh\necho '[    0.000000] Kernel command line: {CMDLINE}'\n"
                    f"echo 'Unknown kernel command line parameters \"p2v.password={SECRET}\"'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))  # lscpu, lspci, … are "not installed"
    out = tmp_path / "files"
    out.mkdir(mode=0o700)
    cfg = Config(server="conv", password=SECRET, guestname="g")
    required, optional = wrapper.write_local_files(str(out), cfg, "/tmp/virt-p2v-x", b"<d/>",
                                                   False)
    assert [os.path.basename(p) for p in optional] == ["dmesg", "p2v-version", "p2v-features"]
    dmesg = (out / "dmesg").read_text()
    assert "Kernel command line" in dmesg and "p2v.server=conv" in dmesg
    for path in required + optional:
        assert SECRET not in Path(path).read_text(), path
        mode = stat.S_IMODE(os.stat(path).st_mode)
        want = 0o700 if path.endswith("virt-v2v-wrapper.sh") else 0o600
        assert mode == want, (path, oct(mode))


def test_remote_commands_are_private() -> None:
    rdir = wrapper.remote_dir_name()
    mk = wrapper.mkdir_command(rdir)
    assert mk.startswith("umask 077 && mkdir -m 0700 -- " + rdir + " && ")
    assert mk.endswith(f"date > {rdir}/time")
    assert wrapper.control_command(rdir).startswith("umask 077; ")
    script = wrapper.wrapper_script(Config(server="conv", password=SECRET), rdir)
    assert script.index("umask 077") < script.index("echo 99 > status")
    assert SECRET not in script


# ---- identity URLs -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


class Handler(http.server.BaseHTTPRequestHandler):
    redirect_to: dict[str, str] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path in self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to[self.path])
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(KEY.encode())

    def log_message(self, *args: object) -> None:
        pass


def serve(tls: tuple[Path, Path] | None) -> tuple[http.server.ThreadingHTTPServer, str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"{scheme}://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def servers(tls: tuple[Path, Path],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))  # our test CA, read by OpenSSL
    plain, plain_url = serve(None)
    secure, secure_url = serve(tls)
    Handler.redirect_to = {"/to-http": plain_url + "/id", "/to-https": secure_url + "/id"}
    yield plain_url, secure_url
    plain.shutdown()
    secure.shutdown()


def test_identity_https_only(servers: tuple[str, str], tmp_path: Path) -> None:
    plain_url, secure_url = servers
    dest = fetch_identity(secure_url + "/id", str(tmp_path))  # the https server works
    assert Path(dest).read_text() == KEY and stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    os.unlink(dest)
    assert Path(fetch_identity(secure_url + "/to-https", str(tmp_path))).read_text() == KEY
    os.unlink(dest)
    with pytest.raises(V2VError, match=r"refusing to fetch a private key over plain http://"):
        fetch_identity(plain_url + "/id", str(tmp_path))
    with pytest.raises(V2VError, match=r"refusing the redirect .* to http://.*https:// only"):
        fetch_identity(secure_url + "/to-http", str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_identity_errors_hide_url_credentials(tmp_path: Path) -> None:
    for url in (f"http://u:{SECRET}@127.0.0.1:9/id", f"https://u:{SECRET}@127.0.0.1:9/id"):
        with pytest.raises(V2VError) as e:
            fetch_identity(url, str(tmp_path))
        assert SECRET not in str(e.value) and "u:<hidden>@127.0.0.1" in str(e.value)
        assert "\n" not in str(e.value)


# ---- remote text in the TUI ---------------------------------------------------------------

def test_server_error_is_not_markup(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True, fail_test=f"virt-v2v said {MARKUP}")
    app = make_app(tmp_path, engine, base_config(server="conv"), )

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await push(pilot, "#test")
        await until(pilot, lambda: "failed" in str(app.screen.query_one("#result").render()))
        shown = await text_of(pilot)
        assert "[bold]boom[/bold]" in shown and "[@click=app.quit]quit now[/]" in shown
        assert app.is_running

    drive(app, script, size=(120, 25))


class MarkupConversion:
    def __init__(self) -> None:
        self.observers: list[object] = []

    def subscribe(self, fn: object) -> None:
        self.observers.append(fn)

    def run(self) -> object:
        from pyv2v.p2v.events import Finished, RemoteLine
        events = [RemoteLine(f"[   1.0] remote says {MARKUP}"),
                  Finished(False, 1, f"control connection failed: {MARKUP}", None)]
        for e in events:
            for fn in self.observers:
                fn(e)  # type: ignore[operator]
        return events[-1]

    def cancel(self) -> None:
        pass


def test_remote_conversion_text_is_not_markup(tmp_path: Path) -> None:
    engine = FakeEngine(recorded=True)
    engine.conversion = lambda cfg, hw: MarkupConversion()  # type: ignore[method-assign,assignment,return-value]
    app = make_app(tmp_path, engine, base_config(server="conv"))

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await push(pilot, "#test")
        await until(pilot, lambda: app.server_info is not None)
        await push(pilot, "#next")
        await push(pilot, "#start")
        await until(pilot, lambda: app.result is not None)
        shown = await text_of(pilot)
        assert "control connection failed: [bold]boom[/bold] [@click=app.quit]quit now[/]" \
            in shown
        assert app.is_running

    drive(app, script, size=(140, 30))


def test_tui_identity_field_refuses_plain_http() -> None:
    from pyv2v.p2v.tui import fields

    assert fields._identity("https://keys.example.com/id") is None
    assert fields._identity("file:///root/id") is None
    assert "https:// only" in (fields._identity("http://keys.example.com/id") or "")
