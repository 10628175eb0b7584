"""Windows first boot: run the queued batch scripts once, as SYSTEM, at the next boot.

Scripts go to ``C:\\Program Files\\pyv2v\\Firstboot\\scripts`` (run in name order by
``firstboot.bat``, each moved to ``scripts-done`` afterwards, output in ``log.txt``).  What
starts ``firstboot.bat``:
- the reference's service wrapper when the user provides it (as the reference finds it:
  ``rhsrvany.exe`` or ``pvvxsvc.exe`` in ``$VIRT_TOOLS_DATA_DIR``, default
  ``/usr/share/virt-tools``): it is copied next to the scripts and registered as the
  auto-start service ``pyv2vFirstboot`` (the runner deletes the service when done);
- otherwise a machine startup script of the local Group Policy (``System32\\GroupPolicy``
  gpt.ini + Machine\\Scripts\\scripts.ini), which Windows runs as SYSTEM at every boot, needing no
  third-party binary; once the scripts are done the runner finds nothing left to do.
"""

from __future__ import annotations

import os
import re

from .... import log
from ..guest import Guest
from .facts import WindowsInfo
from .registry import REG_DWORD, REG_EXPAND_SZ, REG_SZ, Hive

GUEST_DIR = "/Program Files/pyv2v/Firstboot"
SERVICE = "pyv2vFirstboot"
WRAPPERS = ("rhsrvany.exe", "pvvxsvc.exe")
DEFAULT_TOOLS_DIR = "/usr/share/virt-tools"
# Client-side extensions of a GPO with machine scripts: Scripts CSE + its admin tool.
SCRIPTS_CSE = "[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{40B6664F-4972-11D1-A7CA-0000F87571E3}]"

RUNNER = r"""@echo off
rem pyv2v first-boot runner: runs each queued script once, in name order.
setlocal EnableExtensions EnableDelayedExpansion
set fb=%~dp0
set log=%fb%log.txt
if not exist "%fb%scripts-done" mkdir "%fb%scripts-done"
for %%f in ("%fb%scripts\*.bat") do (
  echo %date% %time% pyv2v-firstboot: running %%~nxf >> "%log%"
  call "%%~f" >> "%log%" 2>&1
  echo %date% %time% pyv2v-firstboot: %%~nxf exited with status !errorlevel! >> "%log%"
  move /y "%%~f" "%fb%scripts-done\" > nul
)
"""
SERVICE_CLEANUP = f'sc.exe delete {SERVICE} >> "%log%" 2>&1\r\n'


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def wrapper() -> str | None:
    """The service wrapper the user provides, as the reference looks for it."""
    d = os.environ.get("VIRT_TOOLS_DATA_DIR", DEFAULT_TOOLS_DIR)
    for name in WRAPPERS:
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    return None


class Firstboot:
    def __init__(self, guest: Guest, info: WindowsInfo, drive: str) -> None:
        self.guest, self.info, self.drive = guest, info, drive
        self.win_dir = drive + GUEST_DIR.replace("/", "\\")
        self.queued: list[str] = []

    def queue(self, name: str, body: str) -> str:
        """Queue ``name.bat``; returns its guest path."""
        self.guest.mkdir_p(f"{GUEST_DIR}/scripts")
        path = f"{GUEST_DIR}/scripts/{name}.bat"
        self.guest.write(path, crlf("@echo off\n" + body))
        self.queued.append(name)
        log.debug(f"first-boot script queued: {path}")
        return path

    def add_file(self, local: str, name: str) -> str:
        """Copy a host file next to the scripts; returns its Windows path."""
        self.guest.mkdir_p(GUEST_DIR)
        self.guest.upload(local, f"{GUEST_DIR}/{name}")
        return f"{self.win_dir}\\{name}"

    def install(self, system: Hive) -> str:
        """Install the runner and what starts it; returns the mechanism's name."""
        if not self.queued:
            return "none"
        wrap = wrapper()
        runner = RUNNER + (SERVICE_CLEANUP if wrap else "")
        self.guest.write(f"{GUEST_DIR}/firstboot.bat", crlf(runner))
        cmd = f"{self.win_dir}\\firstboot.bat"
        if wrap:
            exe = self.add_file(wrap, os.path.basename(wrap))
            key = (self.info.control_set, "Services", SERVICE)
            system.set_values(
                key,
                {
                    "Type": (REG_DWORD, 0x10),
                    "Start": (REG_DWORD, 2),
                    "ErrorControl": (REG_DWORD, 1),
                    "ImagePath": (REG_EXPAND_SZ, exe),
                    "DisplayName": (REG_SZ, SERVICE),
                    "ObjectName": (REG_SZ, "LocalSystem"),
                },
            )
            system.set_values(
                (*key, "Parameters"),
                {"CommandLine": (REG_SZ, f'cmd /c "{cmd}"'), "PWD": (REG_SZ, self.win_dir)},
            )
            mech = os.path.basename(wrap).removesuffix(".exe")
        else:
            self._group_policy(cmd)
            mech = "group-policy"
        log.message(f"First-boot scripts queued ({len(self.queued)}), started by {mech}")
        return mech

    def _group_policy(self, cmd: str) -> None:
        gp = f"{self.info.systemroot}/System32/GroupPolicy"
        scripts = f"{gp}/Machine/Scripts/scripts.ini"
        self.guest.mkdir_p(f"{gp}/Machine/Scripts/Startup")
        text, bom = self._read_ini(scripts)
        self.guest.write(scripts, _encode(add_startup_script(text, cmd), bom))
        gpt, gbom = self._read_ini(f"{gp}/gpt.ini")
        self.guest.write(f"{gp}/gpt.ini", _encode(bump_gpt(gpt), gbom))

    def _read_ini(self, path: str) -> tuple[str, bool]:
        if not self.guest.is_file(path):
            return "", False
        raw = self.guest.read(path)
        if raw.startswith(b"\xff\xfe"):
            return raw[2:].decode("utf-16-le", errors="replace"), True
        return raw.decode("latin-1"), False


def _encode(text: str, utf16: bool) -> bytes:
    return b"\xff\xfe" + crlf(text).encode("utf-16-le") if utf16 else crlf(text).encode()


def add_startup_script(text: str, cmd: str) -> str:
    """scripts.ini with `cmd` appended to its [Startup] section (numbered after the others)."""
    lines = text.splitlines()
    if any(line.split("=", 1)[-1].strip().lower() == cmd.lower() for line in lines):
        return text
    start = next((i for i, x in enumerate(lines) if x.strip().lower() == "[startup]"), None)
    if start is None:
        lines += ["[Startup]"]
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    nums = [
        int(m.group(1))
        for x in lines[start + 1 : end]
        if (m := re.match(r"\s*(\d+)CmdLine=", x, re.I))
    ]
    n = max(nums) + 1 if nums else 0
    lines[end:end] = [f"{n}CmdLine={cmd}", f"{n}Parameters="]
    return "\n".join(lines) + "\n"


def bump_gpt(text: str) -> str:
    """gpt.ini naming the scripts extension, with its version raised so Windows re-reads it."""
    lines = [x for x in text.splitlines() if x.strip()] or ["[General]"]
    out, seen_ext, seen_ver = [], False, False
    for x in lines:
        key, _, val = x.partition("=")
        if key.strip().lower() == "version":
            out.append(f"Version={int(val.strip() or 0) + 1}")
            seen_ver = True
        elif key.strip().lower() == "gpcmachineextensionnames":
            out.append(x if SCRIPTS_CSE.lower() in x.lower() else f"{x}{SCRIPTS_CSE}")
            seen_ext = True
        else:
            out.append(x)
    if not seen_ext:
        out.append(f"gPCMachineExtensionNames={SCRIPTS_CSE}")
    if not seen_ver:
        out.append("Version=1")
    return "\n".join(out) + "\n"
