"""Windows first boot: run the queued batch scripts once, as SYSTEM, at the next boot.

Scripts go to ``C:\\Program Files\\pyv2v\\Firstboot\\scripts`` (run in name order by
``firstboot.bat``, each moved to ``scripts-done`` afterwards, output in ``log.txt``).  What
starts ``firstboot.bat``:
- the reference's service wrapper when the user provides it (as the reference finds it:
  ``rhsrvany.exe`` or ``pvvxsvc.exe`` in ``$VIRT_TOOLS_DATA_DIR``, default
  ``/usr/share/virt-tools``): it is copied next to the scripts and registered as the
  auto-start service ``pyv2vFirstboot`` (the runner deletes the service when done);
- otherwise a machine startup script of the local Group Policy (``System32\\GroupPolicy``
  gpt.ini + Machine\\Scripts\\scripts.ini, see `gpo`), which Windows runs as SYSTEM at boot,
  needing no third-party binary; once the scripts are done the runner puts the guest's policy
  files back as they were (its entry gone), deletes itself and keeps ``log.txt`` and
  ``scripts-done``.
"""

from __future__ import annotations

import os

from .... import log
from ..guest import Guest
from . import gpo
from .facts import WindowsInfo
from .gpo import SCRIPTS_CSE, add_startup_script, bump_gpt
from .registry import REG_DWORD, REG_EXPAND_SZ, REG_SZ, Hive

__all__ = ["SCRIPTS_CSE", "Firstboot", "add_startup_script", "bump_gpt", "wrapper"]

GUEST_DIR = "/Program Files/pyv2v/Firstboot"
SERVICE = "pyv2vFirstboot"
WRAPPERS = ("rhsrvany.exe", "pvvxsvc.exe")
DEFAULT_TOOLS_DIR = "/usr/share/virt-tools"

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
            runner = RUNNER + SERVICE_CLEANUP
        else:
            undo = gpo.register(self.guest, self.info.systemroot, self.drive, cmd, GUEST_DIR)
            runner = RUNNER + gpo.undo_batch(undo)
            mech = "group-policy"
        self.guest.write(f"{GUEST_DIR}/firstboot.bat", crlf(runner))
        log.message(f"First-boot scripts queued ({len(self.queued)}), started by {mech}")
        return mech
