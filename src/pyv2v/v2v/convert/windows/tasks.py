"""The first-boot tasks of a Windows conversion, as batch scripts for firstboot.py.

pnputil for the staged virtio drivers, the QEMU guest agent MSI and the balloon service from
virtio-win, removal of the old hypervisor's tools with the uninstall commands they registered
(SOFTWARE ``…\\Uninstall``, also the 32-bit ``WOW6432Node`` view), and the static IP
configuration of the source NICs (the registry's Tcpip interfaces, or ``--mac MAC:ip:…``)
re-applied to the new NICs, found by MAC address through WMI (works from Windows 7/2008 R2 on).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ...types import StaticIp, TargetNicPlan
from .facts import WindowsInfo
from .registry import Hive

UNINSTALL_KEYS = (
    ("Microsoft", "Windows", "CurrentVersion", "Uninstall"),
    ("WOW6432Node", "Microsoft", "Windows", "CurrentVersion", "Uninstall"),
)
# Display-name patterns of other hypervisors' guest tools.
FOREIGN_TOOLS = (
    "VMware Tools",
    "VirtualBox Guest Additions",
    "Citrix XenServer",
    "XenServer VM Tools",
    "Citrix Hypervisor",
    "Parallels Tools",
    "Hyper-V Integration Services",
    "Red Hat Paravirtualized Xen Drivers",
)


@dataclass(frozen=True)
class Uninstall:
    name: str  # DisplayName
    command: str  # the command line run at first boot


def foreign_uninstalls(software: Hive) -> list[Uninstall]:
    found: dict[str, Uninstall] = {}
    for base in UNINSTALL_KEYS:
        for sub in software.children(base):
            key = (*base, sub)
            name = software.get_str(key, "DisplayName") or ""
            if not any(t.lower() in name.lower() for t in FOREIGN_TOOLS):
                continue
            quiet = software.get_str(key, "QuietUninstallString")
            cmd = quiet or software.get_str(key, "UninstallString")
            if cmd and name not in found:
                found[name] = Uninstall(name, uninstall_command(cmd, quiet is not None))
    return list(found.values())


def uninstall_command(cmd: str, quiet: bool) -> str:
    """An unattended uninstall: MsiExec /I (VMware writes that) becomes /X, plus /qn."""
    if re.match(r'\s*"?msiexec(\.exe)?"?\s', cmd, re.I):
        cmd = re.sub(r"(?i)/i(?=\s*\{|\s)", "/X", cmd)
        return f"{cmd} /qn /norestart REBOOT=ReallySuppress"
    return cmd if quiet else f"{cmd} /S"


def pnputil_script(info: WindowsInfo) -> str:
    return 'pnputil.exe -i -a "%SystemRoot%\\Drivers\\VirtIO\\*.inf"\n'


def qemu_ga_script(msi: str) -> str:
    return f'msiexec.exe /i "{msi}" /qn /norestart /l+*vx "%~dp0..\\qemu-ga-install.log"\n'


def balloon_script() -> str:
    return '"%SystemRoot%\\Drivers\\VirtIO\\blnsvr.exe" -i\n'


def uninstall_script(u: Uninstall) -> str:
    return f"rem {u.name}\n{u.command}\n"


def source_static_ips(system: Hive, info: WindowsInfo) -> list[StaticIp]:
    """Static IPv4 configurations of the source's interfaces, in registry (GUID) order."""
    base = (info.control_set, "Services", "Tcpip", "Parameters", "Interfaces")
    out = []
    for guid in system.children(base):
        key = (*base, guid)
        if system.get_int(key, "EnableDHCP") != 0:
            continue
        addrs, masks = _list(system.get(key, "IPAddress")), _list(system.get(key, "SubnetMask"))
        addrs = [a for a in addrs if a and a != "0.0.0.0"]
        if not addrs:
            continue
        gw = [g for g in _list(system.get(key, "DefaultGateway")) if g]
        dns = [d for d in re.split(r"[ ,]+", system.get_str(key, "NameServer") or "") if d]
        prefix = ipaddress.IPv4Network(
            f"0.0.0.0/{masks[0] if masks else '255.255.255.0'}"
        ).prefixlen
        out.append(
            StaticIp(address=addrs[0], prefix=prefix, gateway=gw[0] if gw else None, dns=tuple(dns))
        )
    return out


def _list(v: object) -> list[str]:
    if isinstance(v, list):
        return [str(x) for x in v]
    return [x for x in str(v).split() if x] if isinstance(v, str) else []


def network_plan(
    nics: tuple[TargetNicPlan, ...], source: list[StaticIp]
) -> list[tuple[str, StaticIp]]:
    """(MAC, config) pairs: --mac MAC:ip:… wins; else the source's static configurations are
    given to the target NICs in order."""
    out, rest = [], list(source)
    for n in nics:
        if n.static is not None:
            out.append((n.mac, n.static))
        elif rest:
            out.append((n.mac, rest.pop(0)))
    return out


def network_script(plan: list[tuple[str, StaticIp]]) -> str:
    """PowerShell (2.0-compatible, WMI) that waits for each NIC and sets its static IP."""
    ps = []
    for mac, ip in plan:
        mask = str(ipaddress.IPv4Network(f"0.0.0.0/{ip.prefix}").netmask)
        gw = f"$a.SetGateways(@('{ip.gateway}')) | Out-Null; " if ip.gateway else ""
        dns = (
            f"$a.SetDNSServerSearchOrder(@({','.join(repr(d) for d in ip.dns)})) | Out-Null; "
            if ip.dns
            else ""
        )
        ps.append(
            f"for ($i = 0; $i -lt 60; $i++) {{ $a = Get-WmiObject "
            f"Win32_NetworkAdapterConfiguration | Where-Object {{ $_.MACAddress -eq "
            f"'{mac.upper()}' }}; if ($a) {{ break }}; Start-Sleep 5 }}; "
            f"if ($a) {{ $a.EnableStatic(@('{ip.address}'), @('{mask}')) | Out-Null; {gw}{dns}"
            f"Write-Output 'configured {mac.upper()} {ip.address}/{ip.prefix}' }} "
            f"else {{ Write-Output 'no NIC with MAC {mac.upper()}' }}"
        )
    return "".join(
        f'powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "{p}"\n' for p in ps
    )
