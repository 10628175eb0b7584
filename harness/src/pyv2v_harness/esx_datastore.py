"""A local stand-in for an ESXi/vCenter datastore file server, for `-i libvirt -ic esx://…` tests.

It serves the URL layout VMware's file browser uses (and virt-v2v reads):
``GET|HEAD /folder/PATH?dcPath=DC&dsName=DATASTORE`` over HTTPS with a self-signed certificate
made by `openssl` (CN and subjectAltName 127.0.0.1), HTTP basic auth (401 otherwise), byte
ranges (206, ``Accept-Ranges: bytes``, as nbdkit's curl plugin requires), a session cookie
(``vmware_soap_session``) set on each basic-auth answer and accepted instead of it, and 404 for
unknown datacenters, datastores or files.  A datastore is a local directory; files are only
ever opened read-only.  It is not a vSphere SDK (no ``/sdk`` SOAP endpoint: libvirt's ESX
driver gets 501 for its first call), so tests read the domain metadata from a recorded ESX
domain XML (see tests/integration/test_v2v_esx_input.py).  Every request is recorded (method,
path, status, authorized) for assertions.
"""

from __future__ import annotations

import base64
import os
import posixpath
import secrets
import ssl
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNK = 1 << 20
COOKIE = "vmware_soap_session"


def make_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate and its key for `host` (an IP address), valid two days."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=IP:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    key.chmod(0o600)
    return cert, key


@dataclass
class Request:
    method: str
    path: str
    status: int
    authorized: bool
    range: str | None = None


@dataclass
class DatastoreServer:
    datastores: dict[str, Path]
    user: str
    password: str
    workdir: Path
    datacenter: str = "ha-datacenter"
    port: int = 0
    cert: Path | None = None
    requests: list[Request] = field(default_factory=list)
    bytes_sent: int = 0
    cookie_requests: int = 0  # requests authorized by the session cookie alone
    session: str = field(default_factory=lambda: secrets.token_hex(16))
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> DatastoreServer:
        self.cert, key = make_certificate(self.workdir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(key))
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd, self.port = httpd, httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, name="esx-datastore", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def uri(self, scheme: str = "esx", query: str = "no_verify=1", path: str = "/") -> str:
        """The -ic URI naming this server."""
        return f"{scheme}://{self.user}@127.0.0.1:{self.port}{path}" + (
            f"?{query}" if query else ""
        )

    def record(self, req: Request, sent: int = 0) -> None:
        with self._lock:
            self.requests.append(req)
            self.bytes_sent += sent


class _Handler(BaseHTTPRequestHandler):
    owner: DatastoreServer
    set_cookie = False
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server_version = "VMware-datastore-stand-in"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (quiet)
        pass

    def _authorized(self) -> bool:
        """Basic auth (answered with a session cookie, as ESXi does) or that cookie."""
        o = self.owner
        want = base64.b64encode(f"{o.user}:{o.password}".encode()).decode()
        if self.headers.get("Authorization", "") == f"Basic {want}":
            self.set_cookie = True
            return True
        self.set_cookie = False
        cookie = f'{COOKIE}="{o.session}"'
        if cookie in (self.headers.get("Cookie") or ""):
            with o._lock:
                o.cookie_requests += 1
            return True
        return False

    def _file(self) -> Path | None:
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if not u.path.startswith("/folder/"):
            return None
        if q.get("dcPath", [""])[-1] != self.owner.datacenter:
            return None
        root = self.owner.datastores.get(q.get("dsName", [""])[-1])
        rel = urllib.parse.unquote(u.path[len("/folder/") :])
        norm = posixpath.normpath(rel)
        if root is None or norm.startswith(("../", "/")) or norm == "..":
            return None
        path = root / norm
        return path if path.is_file() else None

    def _empty(self, status: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, body: bool) -> None:
        method = "GET" if body else "HEAD"
        rng = self.headers.get("Range")
        if not self._authorized():
            self.owner.record(Request(method, self.path, 401, False, rng))
            self._empty(401, {"WWW-Authenticate": 'Basic realm="VMware HTTP server"'})
            return
        path = self._file()
        if path is None:
            self.owner.record(Request(method, self.path, 404, True, rng))
            self._empty(404)
            return
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        if rng and rng.startswith("bytes="):
            a, _, b = rng[len("bytes=") :].partition("-")
            try:
                start, end = int(a), min(int(b) if b else size - 1, size - 1)
            except ValueError:
                start, end = size, size
            if start >= size or start > end:
                self.owner.record(Request(method, self.path, 416, True, rng))
                self._empty(416, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        if self.set_cookie:
            self.send_header(
                "Set-Cookie", f'{COOKIE}="{self.owner.session}"; Path=/; HttpOnly; Secure;'
            )
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        sent = 0
        if body:
            fd = os.open(path, os.O_RDONLY)
            try:
                left, off = end - start + 1, start
                while left > 0:
                    chunk = os.pread(fd, min(CHUNK, left), off)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left, off, sent = left - len(chunk), off + len(chunk), sent + len(chunk)
            finally:
                os.close(fd)
        self.owner.record(Request(method, self.path, status, True, rng), sent)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)
