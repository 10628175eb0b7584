"""The virtio-win source: a directory or an ISO (``VIRTIO_WIN``), and which files fit a guest.

As the reference: ``VIRTIO_WIN`` (or the old ``VIRTIO_WIN_DIR``) names a directory or an ISO;
without it ``/usr/share/virtio-win/virtio-win.iso`` or the directory ``/usr/share/virtio-win``.
An ISO is listed and read with xorriso (never mounted on the host); only the files chosen for
the guest are extracted, into a private temporary directory.  `matches_guest` decides from a
path's elements ("viostor/2k22/amd64/viostor.sys", "amd64/w10/…") whether a file is for this
Windows version, variant (server/client) and architecture, as the reference does.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
import stat
import tempfile

from .... import log, process
from ....errors import V2VError
from .facts import WindowsInfo

ENV_VARS = ("VIRTIO_WIN", "VIRTIO_WIN_DIR")
DEFAULT_DIR = "/usr/share/virtio-win"
DEFAULT_ISO = f"{DEFAULT_DIR}/virtio-win.iso"

# Path element → (major, minor, variant: "client" | "server" | None, osinfo name or None).
OS_DIRS: dict[str, tuple[int, int, str | None, str | None]] = {
    "xp": (5, 1, None, None),
    "winxp": (5, 1, None, None),
    "2k3": (5, 2, None, None),
    "win2003": (5, 2, None, None),
    "vista": (6, 0, "client", None),
    "2k8": (6, 0, "server", None),
    "win2008": (6, 0, "server", None),
    "w7": (6, 1, "client", None),
    "win7": (6, 1, "client", None),
    "2k8r2": (6, 1, "server", None),
    "win2008r2": (6, 1, "server", None),
    "w8": (6, 2, "client", None),
    "win8": (6, 2, "client", None),
    "2k12": (6, 2, "server", None),
    "win2012": (6, 2, "server", None),
    "w8.1": (6, 3, "client", None),
    "win8.1": (6, 3, "client", None),
    "2k12r2": (6, 3, "server", None),
    "win2012r2": (6, 3, "server", None),
    "w10": (10, 0, "client", "win10"),
    "win10": (10, 0, "client", "win10"),
    "w11": (10, 0, "client", "win11"),
    "win11": (10, 0, "client", "win11"),
    "2k16": (10, 0, "server", "win2k16"),
    "win2016": (10, 0, "server", "win2k16"),
    "2k19": (10, 0, "server", "win2k19"),
    "win2019": (10, 0, "server", "win2k19"),
    "2k22": (10, 0, "server", "win2k22"),
    "win2022": (10, 0, "server", "win2k22"),
    "2k25": (10, 0, "server", "win2k25"),
    "win2025": (10, 0, "server", "win2k25"),
}
ARCH_DIRS = {"x86": "i386", "i386": "i386", "amd64": "x86_64"}
QEMU_GA = {
    "x86_64": ("qemu-ga-x64.msi", "qemu-ga-x86_64.msi", "rhev-qga64.msi"),
    "i386": ("qemu-ga-x86.msi", "qemu-ga-i386.msi", "rhev-qga.msi"),
}


def matches_guest(path: str, info: WindowsInfo) -> bool:
    elems = [e.lower() for e in path.split("/")[:-1]]
    arch = next((ARCH_DIRS[e] for e in elems if e in ARCH_DIRS), None)
    os_ = next((OS_DIRS[e] for e in elems if e in OS_DIRS), None)
    if arch is None or os_ is None or arch != info.arch:
        return False
    major, minor, variant, osinfo = os_
    if (major, minor) != (info.major, info.minor):
        return False
    if variant is not None and variant != ("server" if info.server else "client"):
        return False
    return osinfo is None or osinfo == info.osinfo


def matches_qemu_ga(path: str, arch: str) -> bool:
    return posixpath.basename(path).lower() in QEMU_GA.get(arch, ())


class VirtioWin:
    """A listed virtio-win source; `fetch` gives a host path for one of its files."""

    def __init__(self, location: str, files: list[str], iso: bool) -> None:
        self.location, self.files, self.iso = location, files, iso
        self._tmp: str | None = None

    @classmethod
    def open(cls, location: str) -> VirtioWin:
        if os.path.isdir(location):
            files = []
            for dirpath, _dirs, names in os.walk(location, followlinks=True):
                for n in names:
                    full = os.path.join(dirpath, n)
                    if os.path.isfile(full):
                        files.append(os.path.relpath(full, location))
            return cls(location, sorted(files), iso=False)
        if os.path.isfile(location) or (
            os.path.exists(location) and stat.S_ISBLK(os.stat(location).st_mode)
        ):
            r = process.run(
                ["xorriso", "-indev", location, "-find", "/", "-type", "f"],
                check=False,
                timeout=300,
            )
            if r.rc != 0:
                raise V2VError(f"{location}: cannot read the virtio-win ISO: {_last_line(r.err)}")
            files = sorted(
                shlex.split(line)[0].lstrip("/")
                for line in r.out.splitlines()
                if line.startswith("'")
            )
            return cls(location, files, iso=True)
        raise V2VError(f"VIRTIO_WIN={location}: no such directory or ISO file")

    def select(self, want: object) -> list[str]:
        """The files whose path satisfies `want(path)` (a predicate)."""
        assert callable(want)
        return [f for f in self.files if want(f)]

    def fetch(self, rel: str) -> str:
        if not self.iso:
            return os.path.join(self.location, rel)
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="pyv2v-virtio-win-")
        dest = os.path.join(self._tmp, rel)
        if not os.path.exists(dest):
            r = process.run(
                [
                    "xorriso",
                    "-osirrox",
                    "on",
                    "-indev",
                    self.location,
                    "-extract_l",
                    "/",
                    self._tmp,
                    "/" + rel,
                    "--",
                ],
                check=False,
                timeout=300,
            )
            if r.rc != 0 or not os.path.isfile(dest):
                raise V2VError(f"{self.location}: cannot extract {rel}: {_last_line(r.err)}")
        return dest

    def close(self) -> None:
        if self._tmp is not None:
            for dirpath, _dirs, _names in os.walk(self._tmp):
                os.chmod(dirpath, 0o700)  # ISO directories are extracted read-only
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "unknown error"


def locate() -> str | None:
    """Where virtio-win is (the environment, else the default places), or None."""
    for var in ENV_VARS:
        val = os.environ.get(var)
        if val:
            return val
    for cand in (DEFAULT_ISO, DEFAULT_DIR):
        if os.path.exists(cand):
            log.debug(f"using virtio-win from {cand}")
            return cand
    return None
