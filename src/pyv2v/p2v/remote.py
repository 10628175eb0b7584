"""Test connection: is a usable virt-v2v on the conversion server? (PROTOCOL.md §2)

Runs, in one ssh session, `[sudo -n ]virt-v2v --version` (a `virt-v2v ([1-9].*)` line;
major 1 ≥ 1.28, or 2) and `[sudo -n ]virt-v2v --machine-readable` (one token per line:
`libguestfs-rewrite` is required, `colours-option` noted, `input:`/`output:` drivers
collected, vdsm/rhv-upload dropped), with a clear one-line error for each way this fails:
no virt-v2v, too old, sudo wants a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import V2VError
from ..ssh import quote
from .session import Session

VERSION_RE = re.compile(r"virt-v2v ([1-9][^\s]*)")
DROPPED_OUTPUTS = {"vdsm", "rhv-upload"}
SUDO_PASSWORD = "sudo: a password is required"
EQUIVALENT_OUTPUTS = {"local": "disk", "disk": "local"}
SEPARATOR = "@@p2v-machine-readable@@"


@dataclass
class ServerInfo:
    version: str
    features: set[str] = field(default_factory=set)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def colours(self) -> bool:
        return "colours-option" in self.features


def parse_version(text: str) -> str | None:
    for line in text.splitlines():
        m = VERSION_RE.search(line)
        if m:
            return m.group(1)
    return None


def check_version(version: str) -> None:
    """Raise unless the server's virt-v2v speaks our protocol (1.x ≥ 1.28, or 2.x)."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        raise V2VError(f"cannot parse the conversion server's virt-v2v version {version!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    if major == 1 and minor < 28:
        raise V2VError(f"virt-v2v on the conversion server is too old ({version}): "
                       "version 1.28 or later is required")
    if major not in (1, 2):
        raise V2VError(f"virt-v2v on the conversion server has major version {major} "
                       f"({version}): this p2v speaks to virt-v2v 1.x (≥ 1.28) and 2.x only")


def parse_features(text: str, version: str) -> ServerInfo:
    info = ServerInfo(version)
    for token in (t.strip() for t in text.splitlines()):
        if not token:
            continue
        info.features.add(token)
        kind, sep, name = token.partition(":")
        if sep and kind == "input":
            info.inputs.append(name)
        elif sep and kind == "output" and name not in DROPPED_OUTPUTS:
            info.outputs.append(name)
    if "libguestfs-rewrite" not in info.features:
        raise V2VError("invalid output of \"virt-v2v --machine-readable\" on the conversion "
                       "server (no libguestfs-rewrite): is it really virt-v2v?")
    return info


def _v2v(session: Session, *args: str) -> list[str]:
    return (["sudo", "-n"] if session.sudo else []) + ["virt-v2v", *args]


def _check_run(session: Session, args: list[str], out: str, err: str, rc: int) -> None:
    where = f"{session.target.host}:{session.target.port}"
    if SUDO_PASSWORD in err or SUDO_PASSWORD in out:
        raise V2VError(f"sudo for user {session.target.user} on {where} requires a password: "
                       "add a NOPASSWD: rule for virt-v2v to /etc/sudoers on the server")
    if rc == 127 or (rc != 0 and "not found" in err):
        raise V2VError(f"virt-v2v is not installed on the conversion server {where} "
                       "(or not on the PATH of ssh sessions)")
    if rc != 0:
        last = (err or out).strip().splitlines()[-1:] or [f"exit code {rc}"]
        raise V2VError(f"\"{' '.join(args)}\" failed on {where}: {last[0]}")


def test_connection(session: Session, output_type: str | None = None) -> ServerInfo:
    """Check the server end to end (one ssh session); returns what its virt-v2v supports."""
    version_argv = _v2v(session, "--version")
    features_argv = _v2v(session, "--machine-readable")
    cmd = f"{quote(version_argv)} && echo {SEPARATOR} && {quote(features_argv)}"
    r = session.run(cmd, what="cannot connect to the conversion server")
    version_out, sep, features_out = r.out.partition(SEPARATOR + "\n")
    _check_run(session, features_argv if sep else version_argv, r.out, r.err, r.rc)
    version = parse_version(version_out)
    if version is None:
        raise V2VError("virt-v2v on the conversion server did not print a version "
                       "(not installed, or much too old)")
    check_version(version)
    info = parse_features(features_out, version)
    if output_type and info.outputs and output_type not in info.outputs \
            and EQUIVALENT_OUTPUTS.get(output_type) not in info.outputs:
        raise V2VError(f"virt-v2v {version} on the conversion server has no output mode "
                       f"-o {output_type} (it offers: {', '.join(info.outputs)})")
    return info
