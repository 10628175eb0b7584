"""virtio drivers into a Windows guest, and the storage driver made to load at boot.

As the reference: every file virtio-win has for this Windows goes flat (lowercased) into
``%SystemRoot%\\Drivers\\VirtIO`` (added to DevicePath; pnputil installs them at first boot),
the storage driver's .sys also into ``System32\\drivers``, with its service key (Start=0 boot,
Type=1 kernel, Group "SCSI miniport") and its PCI ids in the CriticalDeviceDatabase (Windows 7 /
2008 R2 and older) or in the DriverDatabase (Windows 8 and later; the reference asks whether the
hive has a DriverDatabase, we go by the version, which real hives agree with).  Without a
storage driver the guest keeps a bus it boots from: IDE, or SATA (AHCI at boot) on UEFI/q35.
Video as virt-v2v 2.0 chooses it: QXL when the copied drivers include qxl.inf or qxldod.inf
(pnputil installs it at first boot), else standard VGA.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from .... import log
from ....errors import V2VError
from ..guest import Guest
from .facts import WindowsInfo
from .registry import REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ, Hive
from .virtio_win import VirtioWin, matches_guest

SCSI_CLASS_GUID = "{4D36E97B-E325-11CE-BFC1-08002BE10318}"
# Storage driver → (bus, PCI ids: legacy then modern virtio).
STORAGE = {
    "vioscsi": (
        "virtio-scsi",
        ("VEN_1AF4&DEV_1004&SUBSYS_00081AF4&REV_00", "VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01"),
    ),
    "viostor": (
        "virtio-blk",
        ("VEN_1AF4&DEV_1001&SUBSYS_00021AF4&REV_00", "VEN_1AF4&DEV_1042&SUBSYS_11001AF4&REV_01"),
    ),
}
DDB_INF, DDB_CONFIG = "guestor.inf", "guestor_conf"
DDB_VERSION = (
    b"\x00\xff\x09\x00\x00\x00\x00\x00\x7b\xe9\x36\x4d\x25\xe3\xce\x11"
    b"\xbf\xc1\x08\x00\x2b\xe1\x03\x18" + bytes(24)
)
VIRTIO_DIR = "Drivers/VirtIO"
DEVICE_PATH_ADD = "%SystemRoot%\\Drivers\\VirtIO"
AHCI_SERVICE = {(6, 1): "msahci", (6, 0): "msahci"}  # later versions: storahci


@dataclass(frozen=True)
class Installed:
    block_bus: str  # "virtio-blk" | "virtio-scsi" | "ide" | "sata"
    net_bus: str  # "virtio-net" | "e1000"
    video: str  # "qxl" when virtio-win has its QXL driver for this Windows, else "vga"
    virtio_rng: bool
    virtio_balloon: bool
    driver_dir: str  # guest path of Drivers/VirtIO ("" if nothing was copied)
    files: tuple[str, ...]  # lowercased names copied there


def os_dir_hint(info: WindowsInfo) -> str:
    """The virtio-win directory this guest needs, e.g. "viostor/2k22/amd64"."""
    names = {
        "win2k16": "2k16",
        "win2k19": "2k19",
        "win2k22": "2k22",
        "win2k25": "2k25",
        "win10": "w10",
        "win11": "w11",
    }
    old = {
        (6, 0): ("2k8", "vista"),
        (6, 1): ("2k8R2", "w7"),
        (6, 2): ("2k12", "w8"),
        (6, 3): ("2k12R2", "w8.1"),
    }
    pair = old.get((info.major, info.minor), ("2k3", "xp"))
    d = names.get(info.osinfo) or (pair[0] if info.server else pair[1])
    return f"viostor/{d}/{'amd64' if info.arch == 'x86_64' else 'x86'}"


def install(
    guest: Guest,
    sys_drivers: str,
    system: Hive,
    software: Hive,
    info: WindowsInfo,
    vw: VirtioWin | None,
    want_bus: str,
    uefi: bool,
) -> Installed:
    """Copy the drivers; `sys_drivers` is the guest's System32\\drivers as spelled there."""
    hint = os_dir_hint(info)
    chosen = vw.select(lambda p: matches_guest(p, info)) if vw else []
    if vw is not None and not chosen:
        raise V2VError(
            f"{vw.location} has no virtio drivers for {info.describe()} "
            f"(looked for directories like {hint}): use a virtio-win that supports "
            "this Windows version"
        )
    files: list[str] = []
    driver_dir = f"{info.systemroot}/{VIRTIO_DIR}"
    if chosen:
        assert vw is not None
        guest.mkdir_p(driver_dir)
        for rel in chosen:
            name = posixpath.basename(rel).lower()
            guest.upload(vw.fetch(rel), f"{driver_dir}/{name}")
            files.append(name)
        log.message(f"Copied {len(files)} virtio-win files for {info.osinfo} into {driver_dir}")
        _add_device_path(software)
    order = ("vioscsi", "viostor") if want_bus == "virtio-scsi" else ("viostor", "vioscsi")
    drv = next((d for d in order if f"{d}.sys" in files), None)
    if drv is not None:
        guest.cp(f"{driver_dir}/{drv}.sys", f"{sys_drivers}/{drv}.sys")
        for pciid in STORAGE[drv][1]:
            register_boot_driver(system, info, drv, pciid)
        block = STORAGE[drv][0]
    else:
        block = fallback_bus(system, info, uefi)
        where = f"in {vw.location}" if vw else "(no VIRTIO_WIN was given)"
        log.warning(
            f"there is no virtio storage driver for {info.describe()} {where}: the "
            f"guest will use the slower {block.upper()} bus.  To use virtio, convert "
            f"again with VIRTIO_WIN pointing at a virtio-win ISO or directory that has "
            f"{hint}/viostor.sys (package virtio-win)"
        )
    net = "virtio-net" if "netkvm.inf" in files else "e1000"
    return Installed(
        block_bus=block,
        net_bus=net,
        video="qxl" if {"qxl.inf", "qxldod.inf"} & set(files) else "vga",
        virtio_rng="viorng.inf" in files,
        virtio_balloon="balloon.inf" in files,
        driver_dir=driver_dir if files else "",
        files=tuple(sorted(files)),
    )


def register_boot_driver(system: Hive, info: WindowsInfo, drv: str, pciid: str) -> None:
    cs = info.control_set
    if (info.major, info.minor) < (6, 2):  # Windows 7 / 2008 R2 and older
        system.set_values(
            (cs, "Control", "CriticalDeviceDatabase", f"PCI#{pciid}"),
            {"Service": (REG_SZ, drv), "ClassGUID": (REG_SZ, SCSI_CLASS_GUID)},
        )
    else:
        label = f"{DDB_INF}_tmp"
        ddb = ("DriverDatabase",)
        system.set_values(
            (*ddb, "DriverInfFiles", DDB_INF),
            {
                "": (REG_MULTI_SZ, [label]),
                "Active": (REG_SZ, label),
                "Configurations": (REG_MULTI_SZ, [DDB_CONFIG]),
            },
        )
        system.set((*ddb, "DeviceIds", "PCI", pciid), DDB_INF, REG_BINARY, b"\x01\xff\x00\x00")
        pkg = (*ddb, "DriverPackages", label)
        system.set(pkg, "Version", REG_BINARY, DDB_VERSION)
        system.set_values(
            (*pkg, "Configurations", DDB_CONFIG),
            {"ConfigFlags": (REG_DWORD, 0), "Service": (REG_SZ, drv)},
        )
        system.set((*pkg, "Descriptors", "PCI", pciid), "Configuration", REG_SZ, DDB_CONFIG)
    system.set_values(
        (cs, "Services", drv),
        {
            "Type": (REG_DWORD, 1),
            "Start": (REG_DWORD, 0),
            "Group": (REG_SZ, "SCSI miniport"),
            "ErrorControl": (REG_DWORD, 1),
            "ImagePath": (REG_EXPAND_SZ, f"system32\\drivers\\{drv}.sys"),
        },
    )


def fallback_bus(system: Hive, info: WindowsInfo, uefi: bool) -> str:
    """IDE on BIOS (pciide/intelide are always there); on UEFI (q35 has no IDE) SATA, with the
    inbox AHCI driver set to start at boot."""
    if not uefi:
        return "ide"
    svc = AHCI_SERVICE.get((info.major, info.minor), "storahci")
    if system.node((info.control_set, "Services", svc)) is None:
        raise V2VError(
            f"{info.describe()} on UEFI needs a virtio storage driver or its AHCI "
            f"driver ({svc}), and has neither: give VIRTIO_WIN"
        )
    system.set((info.control_set, "Services", svc), "Start", REG_DWORD, 0)
    return "sata"


def _add_device_path(software: Hive) -> None:
    key = ("Microsoft", "Windows", "CurrentVersion")
    cur = software.get_str(key, "DevicePath") or "%SystemRoot%\\inf"
    if DEVICE_PATH_ADD.lower() not in cur.lower().split(";"):
        software.set(key, "DevicePath", REG_EXPAND_SZ, f"{cur};{DEVICE_PATH_ADD}")
