"""What a Windows guest is, read from its registry: `WindowsInfo`, plus the refusals.

`read_info` finds the system root, opens the SOFTWARE and SYSTEM hives and reads the product
name, version (CurrentMajor/MinorVersionNumber on 10+, CurrentVersion before), build, edition,
installation type (Server/Client), architecture and the current control set.  `osinfo` names
the release the way virtio-win directories and libosinfo do (win2k22, win10, win11 …).
`check_not_hibernated` and `check_writable` refuse guests whose NTFS is not safe to write
(hibernation, Fast Startup), with the reference's advice; `bitlocker_devices` lists encrypted
volumes on a libguestfs handle.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ....errors import V2VError
from ...types import Inspect
from ..guest import Guest
from .registry import Hive

SYSTEMROOTS = ("/Windows", "/WINDOWS", "/windows", "/WINNT", "/Winnt", "/winnt")
CURRENT_VERSION = ("Microsoft", "Windows NT", "CurrentVersion")
CV_NAME = "\\".join(CURRENT_VERSION)
HIBERFIL = "/hiberfil.sys"
BITLOCKER = b"-FVE-FS-"  # the volume signature of BitLocker (where NTFS has "NTFS    ")
HIBERNATION_MAGICS = (b"hibr", b"wake", b"rstr")
UNSAFE_ADVICE = (
    "unable to mount the disk image for writing. This has probably happened because "
    "Windows Hibernation or Fast Restart is being used in this guest. You have to "
    "disable this (in the guest) in order to use virt-v2v (pyv2v)"
)
# libosinfo-style names of Windows 10.0 releases by build (servers) and client cutoff.
SERVER_BUILDS = ((26100, "win2k25"), (20348, "win2k22"), (17763, "win2k19"), (14393, "win2k16"))
WIN11_BUILD = 22000


@dataclass(frozen=True)
class WindowsInfo:
    product_name: str
    major: int
    minor: int
    build: int
    edition: str  # EditionID: "ServerStandard", "Professional" …
    installation_type: str  # "Server" | "Client" (InstallationType; "Server Core" counts as Server)
    arch: str  # "x86_64" | "i386"
    systemroot: str  # "/Windows" (guest path)
    control_set: str  # "ControlSet001"

    @property
    def server(self) -> bool:
        return self.installation_type.lower().startswith("server")

    @property
    def osinfo(self) -> str:
        if (self.major, self.minor) != (10, 0):
            return f"win{self.major}.{self.minor}"
        if self.server:
            return next((name for b, name in SERVER_BUILDS if self.build >= b), "win2k16")
        return "win11" if self.build >= WIN11_BUILD else "win10"

    def describe(self) -> str:
        return f"{self.product_name} ({self.major}.{self.minor} build {self.build}, {self.arch})"

    def system_hive(self) -> str:
        return f"{self.systemroot}/System32/config/SYSTEM"

    def software_hive(self) -> str:
        return f"{self.systemroot}/System32/config/SOFTWARE"


def find_systemroot(guest: Guest) -> str:
    for d in SYSTEMROOTS:
        if guest.is_dir(f"{d}/System32/config"):
            return d
    raise V2VError(
        "this Windows guest has no system root (no \\Windows\\System32\\config "
        "directory on its root filesystem)"
    )


def read_info(
    guest: Guest, inspect: Inspect, software: Hive, system: Hive, systemroot: str
) -> WindowsInfo:
    cv = CURRENT_VERSION
    if software.node(cv) is None:
        raise V2VError(
            f"the guest's SOFTWARE hive has no {CV_NAME} key: "
            "not a Windows installation this tool understands"
        )
    major = software.get_int(cv, "CurrentMajorVersionNumber")
    minor = software.get_int(cv, "CurrentMinorVersionNumber")
    if major is None:
        ver = software.get_str(cv, "CurrentVersion") or f"{inspect.major}.{inspect.minor}"
        a, _, b = ver.partition(".")
        major, minor = int(a or 0), int(b or 0)
    build = software.get_str(cv, "CurrentBuildNumber") or software.get_str(cv, "CurrentBuild")
    itype = software.get_str(cv, "InstallationType") or ""
    edition = software.get_str(cv, "EditionID") or ""
    if not itype:  # before 2008 R2 there is no InstallationType: the edition says it
        itype = "Server" if "server" in edition.lower() else "Client"
    current = system.get_int(("Select",), "Current")
    if current is None:
        raise V2VError(
            "the guest's SYSTEM hive has no Select\\Current value: "
            "cannot find the current control set"
        )
    cs = f"ControlSet{current:03d}"
    if system.node((cs,)) is None:
        raise V2VError(f"the guest's SYSTEM hive has no {cs} (named by Select\\Current)")
    arch = inspect.arch if inspect.arch in ("x86_64", "i386") else _arch(system, cs)
    return WindowsInfo(
        product_name=software.get_str(cv, "ProductName") or inspect.product_name,
        major=major,
        minor=minor or 0,
        build=int(build) if build and build.isdigit() else 0,
        edition=edition,
        installation_type=itype,
        arch=arch,
        systemroot=systemroot,
        control_set=cs,
    )


def _arch(system: Hive, cs: str) -> str:
    env = (cs, "Control", "Session Manager", "Environment")
    pa = (system.get_str(env, "PROCESSOR_ARCHITECTURE") or "").upper()
    return "i386" if pa == "X86" else "x86_64"


def check_not_hibernated(guest: Guest) -> None:
    """Refuse a hibernated guest or one shut down with Fast Startup (hiberfil.sys in use)."""
    for name in (HIBERFIL, "/HIBERFIL.SYS"):
        if guest.is_file(name):
            head = guest.read_head(name, 4).lower()
            if head in HIBERNATION_MAGICS:
                raise V2VError(f"{UNSAFE_ADVICE}. (The guest's {name} holds a hibernation image.)")


def check_writable(guest: Guest) -> None:
    """ntfs-3g can fall back to a read-only mount silently: prove the root is writable."""
    probe = f"/pyv2v-write-test-{secrets.token_hex(4)}"
    try:
        guest.write(probe, b"")
        guest.rm_f(probe)
    except V2VError:
        raise V2VError(f"{UNSAFE_ADVICE}. (The root filesystem was mounted read-only.)") from None


def bitlocker_devices(g: Any) -> list[str]:
    """Devices holding BitLocker volumes on a launched libguestfs handle (they cannot be
    read, so they cannot be converted).  Every partition is probed: libguestfs'
    list_filesystems leaves out what blkid calls a crypto device, BitLocker included."""
    found = []
    for dev in sorted(set(g.list_devices()) | set(g.list_partitions())):
        try:
            kind = str(g.vfs_type(dev)).lower()
        except RuntimeError:
            kind = ""
        if kind in ("", "unknown"):  # older blkid: look for the signature at offset 3 ourselves
            try:
                kind = "bitlocker" if g.pread_device(dev, 11, 0)[3:11] == BITLOCKER else kind
            except RuntimeError:
                continue
        if kind == "bitlocker":
            found.append(str(dev))
    return found


def unsafe_ntfs(g: Any) -> str | None:
    """When inspection found nothing: the first NTFS volume that ntfs-3g refuses even read-only
    because Windows left it hibernated or unclean (Fast Startup), with ntfs-3g's reason."""
    for dev, fstype in sorted(g.list_filesystems().items()):
        if str(fstype) != "ntfs":
            continue
        try:
            g.mount_ro(dev, "/")
        except RuntimeError as e:
            msg = str(e)
            if any(k in msg.lower() for k in ("unsafe state", "hibernat", "unclean",
                                              "inconsistent")):
                first = next((x for x in msg.splitlines() if x.strip()), msg)
                return f"{dev}: {first.strip()}"
        else:
            g.umount_all()
    return None
