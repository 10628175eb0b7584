"""Registry hygiene: the old hypervisor's drivers and services that break or hang the boot.

VMware's storage, graphics, VMCI and file-system filter drivers (and those of Hyper-V,
VirtualBox and Xen) probe hardware that KVM does not have; boot-start ones can stop the boot.
Each one present is disabled (Start=4) and removed from the device-class filter lists
(``Control\\Class\\{…}\\UpperFilters``/``LowerFilters``) that would otherwise name a
disabled driver.  The vendor's own uninstaller still runs at first boot (firstboot.py).
"""

from __future__ import annotations

from .... import log
from .facts import WindowsInfo
from .registry import REG_DWORD, REG_MULTI_SZ, Hive

SERVICE_DISABLED = 4
# Services of other hypervisors, by vendor (lowercase, as Windows compares).
FOREIGN_SERVICES: dict[str, tuple[str, ...]] = {
    "VMware": (
        "pvscsi",
        "vmci",
        "vm3dmp",
        "vm3dmp_loader",
        "vm3dmp-debug",
        "vm3dmp-stats",
        "vmhgfs",
        "vmmemctl",
        "vmmouse",
        "vmusbmouse",
        "vmrawdsk",
        "vsepflt",
        "vnetflt",
        "vmxnet3ndis6",
        "vmxnet",
        "vmaudio",
        "vmvss",
        "vmtools",
    ),
    "VirtualBox": ("vboxguest", "vboxmouse", "vboxsf", "vboxvideo", "vboxwddm", "vboxservice"),
    "Xen": ("xenvbd", "xenfilt", "xenbus", "xeniface", "xenvif", "xennet"),
    "Hyper-V": ("storvsc", "vmbus", "hyperkbd", "hypervideo", "netvsc"),
}


def disable_foreign_services(system: Hive, info: WindowsInfo) -> list[str]:
    """Disable every foreign service present; returns their names as found."""
    services = (info.control_set, "Services")
    present = {n.lower(): n for n in system.children(services)}
    disabled = []
    for vendor, names in FOREIGN_SERVICES.items():
        for name in names:
            real = present.get(name)
            if real is None:
                continue
            start = system.get_int((*services, real), "Start")
            if start != SERVICE_DISABLED:
                system.set((*services, real), "Start", REG_DWORD, SERVICE_DISABLED)
                disabled.append(real)
                log.debug(f"disabled the {vendor} service {real} (Start was {start})")
    _drop_filters(system, info, {d.lower() for d in disabled})
    return disabled


def _drop_filters(system: Hive, info: WindowsInfo, names: set[str]) -> None:
    classes = (info.control_set, "Control", "Class")
    for guid in system.children(classes):
        for value in ("UpperFilters", "LowerFilters"):
            cur = system.get((*classes, guid), value)
            if isinstance(cur, list) and any(f.lower() in names for f in cur):
                keep = [f for f in cur if f.lower() not in names]
                system.set((*classes, guid), value, REG_MULTI_SZ, keep)
