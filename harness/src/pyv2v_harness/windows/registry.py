"""What the phony guests' SOFTWARE and SYSTEM hives hold, as `HiveTree`s for hive.build_hive.

Only what libguestfs inspection and a converter read: the version keys, uninstall entries (VMware
Tools with its MsiExec string, one unrelated application), the control set's services (VMware's
drivers and the storage basics), the NIC's static TCP/IP settings, MountedDevices.
"""

from __future__ import annotations

from .hive import (
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_SZ,
    HiveTree,
    Value,
    dword,
    multi_sz,
    sz,
)
from .recipes import WinRecipe

VMWARE_TOOLS_GUID = "{FE2F6A2C-196E-4210-9C04-2B1BC21F07EF}"
NIC_GUID = "{5C4B6E1A-3F2D-4E8B-9A7C-1D2E3F405162}"
NET_CLASS = "{4D36E972-E325-11CE-BFC1-08002BE10318}"
SCSI_CLASS = "{4D36E97B-E325-11CE-BFC1-08002BE10318}"
STATIC_IP = {
    "IPAddress": "192.168.122.50",
    "SubnetMask": "255.255.255.0",
    "DefaultGateway": "192.168.122.1",
    "NameServer": "192.168.122.1",
}

# name: (Type, Start, Group, ImagePath, DisplayName) — ImagePath styles as Windows writes them.
SERVICES: dict[str, tuple[int, int, str, str, str]] = {
    "disk": (1, 0, "SCSI Class", r"System32\drivers\disk.sys", "Disk Driver"),
    "volmgr": (1, 0, "System Bus Extender", r"System32\drivers\volmgr.sys", "Volume Manager"),
    "partmgr": (1, 0, "System Bus Extender", r"System32\drivers\partmgr.sys", "Partition driver"),
    "atapi": (1, 0, "SCSI miniport", r"System32\drivers\atapi.sys", "IDE Channel"),
    "intelide": (1, 3, "System Bus Extender", r"System32\drivers\intelide.sys", "intelide"),
    "LSI_SAS": (1, 0, "SCSI miniport", r"System32\drivers\lsi_sas.sys", "LSI_SAS"),
    "pvscsi": (1, 0, "SCSI miniport", r"System32\drivers\pvscsi.sys", "pvscsi"),
    "vmci": (1, 0, "System Bus Extender", r"system32\DRIVERS\vmci.sys", "VMware VMCI Bus Driver"),
    "vm3dmp": (1, 3, "Video", r"\SystemRoot\System32\drivers\vm3dmp.sys", "vm3dmp"),
    "vmxnet3ndis6": (
        1,
        3,
        "NDIS",
        r"\SystemRoot\System32\drivers\vmxnet3.sys",
        "vmxnet3 NDIS 6 Ethernet Adapter Driver",
    ),
    "vsepflt": (2, 1, "FSFilter Anti-Virus", r"system32\DRIVERS\vsepflt.sys", "vsepflt"),
    "vmhgfs": (2, 1, "Network", r"system32\DRIVERS\vmhgfs.sys", "VMware Shared Folders"),
    "VMTools": (
        16,
        2,
        "",
        '"C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe"',
        "VMware Tools",
    ),
    "Tcpip": (1, 0, "PNP_TDI", r"System32\drivers\tcpip.sys", "TCP/IP Protocol Driver"),
}
STORAGE_AHCI = {"win2008r2": "msahci"}  # newer ones: storahci
DRIVER_FILES = (
    "disk",
    "volmgr",
    "partmgr",
    "atapi",
    "intelide",
    "lsi_sas",
    "pvscsi",
    "vmci",
    "vm3dmp",
    "vmxnet3",
    "vsepflt",
    "vmhgfs",
    "tcpip",
    "storport",
    "storahci",
)


def software(r: WinRecipe) -> HiveTree:
    cv = r"Microsoft\Windows NT\CurrentVersion"
    version: list[Value] = [
        ("ProductName", REG_SZ, sz(r.product_name)),
        ("CurrentVersion", REG_SZ, sz(r.current_version)),
        ("CurrentBuild", REG_SZ, sz(r.build)),
        ("CurrentBuildNumber", REG_SZ, sz(r.build)),
        ("EditionID", REG_SZ, sz(r.edition)),
        ("InstallationType", REG_SZ, sz(r.installation_type)),
        ("SystemRoot", REG_SZ, sz(r"C:\Windows")),
        ("PathName", REG_SZ, sz(r"C:\Windows")),
        ("RegisteredOwner", REG_SZ, sz("pyv2v")),
    ]
    if r.has_major_minor_values:
        version += [
            ("CurrentMajorVersionNumber", REG_DWORD, dword(r.major)),
            ("CurrentMinorVersionNumber", REG_DWORD, dword(r.minor)),
            ("DisplayVersion", REG_SZ, sz(r.display_version)),
        ]
    uninstall = r"Microsoft\Windows\CurrentVersion\Uninstall"
    return {
        cv: version,
        r"Microsoft\Windows\CurrentVersion": [
            ("ProgramFilesDir", REG_SZ, sz(r"C:\Program Files")),
            ("CommonFilesDir", REG_SZ, sz(r"C:\Program Files\Common Files")),
            ("DevicePath", REG_EXPAND_SZ, sz(r"%SystemRoot%\inf")),
        ],
        uninstall + "\\" + VMWARE_TOOLS_GUID: [
            ("DisplayName", REG_SZ, sz("VMware Tools")),
            ("DisplayVersion", REG_SZ, sz("12.1.5.20735119")),
            ("Publisher", REG_SZ, sz("VMware, Inc.")),
            ("InstallLocation", REG_SZ, sz("C:\\Program Files\\VMware\\VMware Tools\\")),
            ("UninstallString", REG_EXPAND_SZ, sz(f"MsiExec.exe /X{VMWARE_TOOLS_GUID}")),
            ("WindowsInstaller", REG_DWORD, dword(1)),
        ],
        uninstall + r"\7-Zip": [
            ("DisplayName", REG_SZ, sz("7-Zip 22.01 (x64)")),
            ("DisplayVersion", REG_SZ, sz("22.01")),
            ("Publisher", REG_SZ, sz("Igor Pavlov")),
            ("UninstallString", REG_SZ, sz('"C:\\Program Files\\7-Zip\\Uninstall.exe"')),
        ],
        r"Microsoft\Windows NT\CurrentVersion\Winlogon": [
            ("Shell", REG_SZ, sz("explorer.exe")),
        ],
    }


def _service(name: str, spec: tuple[int, int, str, str, str]) -> list[Value]:
    typ, start, group, image, display = spec
    values: list[Value] = [
        ("Type", REG_DWORD, dword(typ)),
        ("Start", REG_DWORD, dword(start)),
        ("ErrorControl", REG_DWORD, dword(1)),
        ("ImagePath", REG_EXPAND_SZ, sz(image)),
        ("DisplayName", REG_SZ, sz(display)),
    ]
    if group:
        values.append(("Group", REG_SZ, sz(group)))
    if typ == 16:
        values.append(("ObjectName", REG_SZ, sz("LocalSystem")))
    return values


def system(r: WinRecipe, c_drive: bytes) -> HiveTree:
    """SYSTEM; `c_drive` is MountedDevices' \\DosDevices\\C: value (image.py knows the disk)."""
    cs = "ControlSet001"
    services = dict(SERVICES)
    ahci = STORAGE_AHCI.get(r.name, "storahci")
    services[ahci] = (1, 0, "SCSI miniport", rf"System32\drivers\{ahci}.sys", ahci)
    tree: dict[str, list[Value]] = {
        "Select": [
            ("Current", REG_DWORD, dword(1)),
            ("Default", REG_DWORD, dword(1)),
            ("Failed", REG_DWORD, dword(0)),
            ("LastKnownGood", REG_DWORD, dword(1)),
        ],
        "MountedDevices": [
            (r"\DosDevices\C:", REG_BINARY, c_drive),
            (r"\??\Volume{0b3e7a3e-1f2c-11ed-9c2e-806e6f6e6963}", REG_BINARY, c_drive),
        ],
        "Setup": [("SystemSetupInProgress", REG_DWORD, dword(0))],
    }
    for name, spec in services.items():
        tree[rf"{cs}\Services\{name}"] = _service(name, spec)
    tcpip = rf"{cs}\Services\Tcpip\Parameters"
    tree[tcpip] = [
        ("Hostname", REG_SZ, sz(r.hostname)),
        ("NV Hostname", REG_SZ, sz(r.hostname)),
        ("Domain", REG_SZ, sz("")),
    ]
    tree[rf"{tcpip}\Interfaces\{NIC_GUID}"] = [
        ("EnableDHCP", REG_DWORD, dword(0)),
        ("IPAddress", REG_MULTI_SZ, multi_sz([STATIC_IP["IPAddress"]])),
        ("SubnetMask", REG_MULTI_SZ, multi_sz([STATIC_IP["SubnetMask"]])),
        ("DefaultGateway", REG_MULTI_SZ, multi_sz([STATIC_IP["DefaultGateway"]])),
        ("NameServer", REG_SZ, sz(STATIC_IP["NameServer"])),
    ]
    control = rf"{cs}\Control"
    tree[rf"{control}\ComputerName\ComputerName"] = [("ComputerName", REG_SZ, sz(r.hostname))]
    tree[rf"{control}\Session Manager\Environment"] = [
        ("PROCESSOR_ARCHITECTURE", REG_SZ, sz("AMD64")),
        ("OS", REG_SZ, sz("Windows_NT")),
    ]
    tree[rf"{control}\Session Manager\Power"] = [
        ("HiberbootEnabled", REG_DWORD, dword(1 if r.bad == "dirty" else 0))
    ]
    tree[rf"{control}\Class\{SCSI_CLASS}"] = [("Class", REG_SZ, sz("SCSIAdapter"))]
    tree[rf"{control}\Class\{NET_CLASS}"] = [("Class", REG_SZ, sz("Net"))]
    tree[rf"{control}\Class\{NET_CLASS}\0001"] = [
        ("DriverDesc", REG_SZ, sz("vmxnet3 Ethernet Adapter")),
        ("NetCfgInstanceId", REG_SZ, sz(NIC_GUID)),
        ("ComponentId", REG_SZ, sz(r"pci\ven_15ad&dev_07b0")),
        ("Service", REG_SZ, sz("vmxnet3ndis6")),
    ]
    tree[rf"{control}\Network\{NET_CLASS}\{NIC_GUID}\Connection"] = [
        ("Name", REG_SZ, sz("Ethernet0")),
        ("PnPInstanceId", REG_SZ, sz(r"PCI\VEN_15AD&DEV_07B0&SUBSYS_07B015AD&REV_01\FF")),
    ]
    if r.major < 10 and (r.major, r.minor) < (6, 2):
        cdd = rf"{control}\CriticalDeviceDatabase"
        tree[rf"{cdd}\pci#ven_15ad&dev_07c0"] = [
            ("Service", REG_SZ, sz("pvscsi")),
            ("ClassGUID", REG_SZ, sz(SCSI_CLASS)),
        ]
        tree[rf"{cdd}\pci#ven_8086&dev_7111"] = [
            ("Service", REG_SZ, sz("intelide")),
            ("ClassGUID", REG_SZ, sz("{4D36E96A-E325-11CE-BFC1-08002BE10318}")),
        ]
    return tree


def bcd() -> HiveTree:
    """A stand-in Boot Configuration Data store (a hive too): the boot manager object only."""
    obj = r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
    return {
        r"Description": [
            ("KeyName", REG_SZ, sz("BCD00000000")),
            ("System", REG_DWORD, dword(1)),
            ("TreatAsSystem", REG_DWORD, dword(1)),
        ],
        rf"{obj}\Description": [("Type", REG_DWORD, dword(0x10100002))],
        rf"{obj}\Elements\12000004": [("Element", REG_SZ, sz("Windows Boot Manager"))],
    }
