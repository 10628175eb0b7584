"""`-i libvirt -ic esx://… | vpx://… -ip FILE NAME`: a VMware guest on ESXi or vCenter, without
VDDK (the reference's "vCenter HTTPS" input).

Metadata: libvirt's ESX driver (`openAuth`, its credential callback answered with the first
line of the -ip file), the domain refused unless shut off, its XML turned into the Source by
the `-i libvirtxml` parsing.  Disks: each ``[datastore] folder/guest.vmdk`` (esx_map.py) is
checked over HTTPS first — its descriptor fetched (a flat ESXi disk: one raw extent; snapshots
and sparse disks are refused), the extent's HEAD answered 200 — so that a wrong password (401),
a missing file (404) or an untrusted certificate is one line before any appliance starts; then
nbdkit's curl plugin serves the extent read-only on a private unix socket.  The password is
never in argv or logs: only in memory and in 0600 files of our 0700 work directory.  TLS is
verified by default (the system CAs); ``?no_verify=1`` in the -ic URI turns
verification off for libvirt, our checks and nbdkit alike, as in the reference.  Proxy
variables are dropped for nbdkit (the reference does so: vCenter is slow enough directly).
nbdkit authenticates as the reference does, with a session cookie (VMware's sessions expire
after 30 minutes): its cookie script, renewed every 25 minutes, is `curl --head` with the user
and password in a 0600 curl config file (`-K`), never on a command line.  `-it vddk` is refused
by cli.py.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import stat
import time
import urllib.parse
from typing import Any

from lxml import etree

from ... import log, process
from ...errors import V2VError
from ...libvirt_xml import parse
from ..outputs.libvirt import err_text, libvirt_module
from ..types import Source
from . import esx_map
from .base import InputOptions
from .libvirtxml import source_from_domain
from .ova_archive import private_sockdir

DESCRIPTOR_MAX = 64 << 10
PROXY_VARS = {
    v for p in ("http", "https", "all", "no") for v in (f"{p}_proxy", f"{p}_PROXY".upper())
}
STATES = {1: "running", 2: "running (blocked)", 3: "paused"}  # refused, as the reference


def read_password(path: str | None) -> str:
    """The first line of the -ip file, which must be private to its owner."""
    if not path:
        raise V2VError("-i libvirt: expecting -ip PASSWORD_FILE for an esx:// or vpx:// connection")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise V2VError(f"-ip {path}: cannot open the password file: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise V2VError(f"-ip {path}: not a regular file")
        if st.st_mode & 0o077:
            raise V2VError(
                f"-ip {path}: the password file is readable by other users (chmod 600 {path})"
            )
        first = f.read(4096).split(b"\n", 1)[0].rstrip(b"\r")
    if not first:
        raise V2VError(f"-ip {path}: the password file is empty")
    return first.decode("utf-8", "surrogateescape")


def open_metadata(ic: str, user: str, password: str) -> Any:
    """libvirt's ESX driver, credentials from memory.  Tests replace this one function to read
    a recorded ESX domain XML through libvirt's test driver (the only seam of this input)."""
    lv = libvirt_module()
    answers = {
        lv.VIR_CRED_AUTHNAME: user,
        lv.VIR_CRED_USERNAME: user,
        lv.VIR_CRED_PASSPHRASE: password,
        lv.VIR_CRED_NOECHOPROMPT: password,
    }

    def callback(creds: list[list[Any]], _data: object) -> int:
        for cred in creds:
            if cred[0] not in answers:
                return -1
            cred[4] = answers[cred[0]]
        return 0

    try:
        return lv.openAuth(ic, [list(answers), callback, None], 0)
    except lv.libvirtError as e:
        hint = (
            " (add ?no_verify=1 to the -ic URI to skip TLS verification)"
            if "certificate" in err_text(e).lower()
            else ""
        )
        raise V2VError(f"-i libvirt: cannot connect to {ic}: {err_text(e)}{hint}") from None


def domain_xml(conn: Any, name: str, ic: str) -> str:
    lv = libvirt_module()
    try:
        try:
            dom = conn.lookupByName(name)
        except lv.libvirtError:
            raise V2VError(f"-i libvirt: no domain called {name} on {ic}") from None
        try:
            state = dom.state(0)[0]
            xml: str = dom.XMLDesc(0)
        except lv.libvirtError as e:
            raise V2VError(f"-i libvirt: cannot read domain {name}: {err_text(e)}") from None
    finally:
        conn.close()
    if state in STATES:
        raise V2VError(
            f"-i libvirt: domain {name} is {STATES[state]}: it must be shut down in "
            "order to perform the conversion"
        )
    return xml


class Https:
    """HEAD/GET requests to the datastore with basic auth and the -ic URI's TLS rule."""

    def __init__(self, uri: esx_map.EsxUri, password: str) -> None:
        self.uri = uri
        ctx = ssl.create_default_context()
        if uri.no_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.ctx = ctx
        token = base64.b64encode(f"{uri.user}:{password}".encode()).decode()
        self._auth = {"Authorization": f"Basic {token}"}

    def request(self, method: str, url: str, limit: int = 0) -> tuple[int, bytes, int]:
        """(status, body (GET: at most `limit` bytes), Content-Length or -1)."""
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPSConnection(
            u.hostname or "", u.port or 443, context=self.ctx, timeout=120
        )
        headers = dict(self._auth)
        if method == "GET":
            headers["Range"] = f"bytes=0-{limit - 1}"
        try:
            conn.request(method, f"{u.path}?{u.query}", headers=headers)
            resp = conn.getresponse()
            body = resp.read(limit) if method == "GET" else b""
            length = int(resp.headers.get("Content-Length") or -1)
            return resp.status, body, length
        except ssl.SSLCertVerificationError as e:
            raise V2VError(
                f"-i libvirt: the TLS certificate of {self.uri.server} cannot be "
                f"verified ({e.verify_message}): add ?no_verify=1 to the -ic URI to "
                "skip verification"
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise V2VError(f"-i libvirt: cannot reach {self.uri.https_base}: {e}") from None
        finally:
            conn.close()

    def check(self, method: str, url: str, limit: int = 0) -> tuple[bytes, int]:
        status, body, length = self.request(method, url, limit)
        if status == 401:
            raise V2VError(
                f"-i libvirt: {self.uri.server}: incorrect username or password "
                f"(user {self.uri.user}, password from -ip)"
            )
        if status == 404:
            raise V2VError(f"-i libvirt: {self.uri.server}: URL not found: {url}")
        if status not in (200, 206):
            raise V2VError(f"-i libvirt: {self.uri.server}: invalid response {status} for {url}")
        return body, length


def cookie_script(workdir: str, uri: esx_map.EsxUri, password: str, url: str, i: int) -> str:
    """A script printing the session cookie a HEAD of `url` sets (nbdkit's cookie-script)."""
    config = os.path.join(workdir, f"curl{i}.conf")
    script = os.path.join(workdir, f"cookie{i}.sh")
    _write_private(config, esx_map.curl_config(uri, password, url), 0o600)
    _write_private(script, esx_map.cookie_script(config), 0o700)
    return script


def _write_private(path: str, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)


def _serve(url: str, uri: esx_map.EsxUri, script: str, sock: str) -> None:
    """nbdkit's curl plugin serving `url` read-only on the unix socket `sock`."""
    argv = [
        "nbdkit",
        "-r",
        "-f",
        "--exit-with-parent",
        "-U",
        sock,
        "curl",
        f"url={url}",
        f"cookie-script={script}",
        "cookie-script-renew=1500",
        "protocols=https",
        "timeout=2000",
    ]
    if uri.no_verify:
        argv.append("sslverify=false")
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    child = process.spawn(argv, stdout=None, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            err = child.proc.stderr.read() if child.proc.stderr else ""
            last = (str(err).strip().splitlines() or ["exited"])[-1]
            raise V2VError(f"-i libvirt: nbdkit cannot serve {url}: {last}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
        except OSError:
            time.sleep(0.1)
            continue
        _probe(sock, url)
        return
    child.terminate()
    raise V2VError(f"-i libvirt: nbdkit did not start serving {url}")


def _probe(sock: str, url: str) -> None:
    """One NBD handshake: the curl plugin opened the URL (its session cookie works)."""
    import nbd  # Debian python3-libnbd

    h = nbd.NBD()
    try:
        h.connect_uri(f"nbd+unix:///?socket={sock}")
        h.shutdown()
    except nbd.Error as e:
        raise V2VError(
            f"-i libvirt: nbdkit cannot read {url} ({e.string or e}): check the "
            "session cookie / credentials"
        ) from None


def esx_source(opts: InputOptions) -> Source:
    """The guest `opts.args[0]` on the ESXi/vCenter of `opts.input_conn` as a Source whose
    disks are read-only NBD exports of the datastore files."""
    ic = opts.input_conn or ""
    uri = esx_map.parse_uri(ic)
    if len(opts.args) != 1:
        raise V2VError("-i libvirt: expecting one guest name")
    name = opts.args[0]
    password = read_password(opts.password_file)
    conn = open_metadata(ic, uri.user, password)
    root = parse(domain_xml(conn, name, ic), what=f"the XML of domain {name}")
    what = f"-i libvirt: domain {name}"
    dc_path = esx_map.datacenter_path(uri, root)
    https = Https(uri, password)
    workdir = private_sockdir("pyv2v-esx-")
    disks: list[etree._Element] = [
        d for d in root.findall("./devices/disk") if d.get("device", "disk") == "disk"
    ]
    for i, disk in enumerate(disks):
        src = disk.find("source")
        file = src.get("file") if src is not None else None
        if disk.get("type") != "file" or not file:
            raise V2VError(f"{what}: disk {i} is not a datastore file")
        ds, path = esx_map.datastore_file(file, what)
        head, _ = https.check("GET", esx_map.file_url(uri, dc_path, ds, path), DESCRIPTOR_MAX)
        extent = esx_map.flat_extent(head, path, f"[{ds}] {path}")
        url = esx_map.file_url(uri, dc_path, ds, extent)
        _, size = https.check("HEAD", url)
        log.message(
            f"Disk {i + 1}: [{ds}] {extent} over HTTPS"
            + (f" ({size / 2**30:.1f} GiB)" if size > 0 else "")
        )
        sock = os.path.join(workdir, f"disk{i}.sock")
        _serve(url, uri, cookie_script(workdir, uri, password, url, i), sock)
        esx_map.set_nbd_socket(disk, sock)
    return source_from_domain(root, opts, what, "/")
