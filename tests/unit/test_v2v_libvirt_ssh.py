"""libvirt_ssh.libssh_uri: how a qemu+ssh:// / xen+ssh:// URI becomes libvirt's libssh URI."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.v2v.inputs.libvirt_ssh import libssh_uri


def _params(uri: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))


def test_ssh_becomes_libssh_with_our_host_key_policy(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    uri, t = libssh_uri("qemu+ssh://admin@kvm1.example:2222/system?socket=/run/x%20y&proxy=netcat",
                        "/keys/id")
    assert uri.startswith("qemu+libssh://admin@kvm1.example:2222/system?")
    p = _params(uri)
    assert p == {"socket": "/run/x y", "proxy": "netcat", "keyfile": "/keys/id",
                 "known_hosts": f"{tmp_path}/st/pyv2v/known_hosts", "known_hosts_verify": "normal",
                 "sshauth": "privkey"}
    assert (t.host, t.port, t.user, t.identity) == ("kvm1.example", 2222, "admin", "/keys/id")
    assert t.known_hosts_file == p["known_hosts"]
    uri, t = libssh_uri("xen+libssh://xen1/", "/k")
    assert uri.startswith("xen+libssh://root@xen1:22/?") and t.user == "root" and t.port == 22


@pytest.mark.parametrize("uri,needle", [
    ("qemu+tls://h/system", "is a remote connection"),
    ("qemu+libssh2://h/system", "is a remote connection"),
    ("vbox+ssh://h/session", "is a remote connection"),
    ("qemu+ssh:///system", "no host name"),
    ("qemu+ssh://u:secret@h/system", "passwords in the URI"),
    ("qemu+ssh://h:99999/system", "bad port"),
    ("qemu+ssh://h/system?known_hosts_verify=auto", "known_hosts_verify= is set by v2v"),
    ("qemu+ssh://h/system?keyfile=/k", "keyfile= is set by v2v"),
    ("qemu+ssh://h/system?command=/bin/evil", "command= is set by v2v"),
])
def test_refused(uri: str, needle: str) -> None:
    with pytest.raises(V2VError, match=needle):
        libssh_uri(uri, "/k")
