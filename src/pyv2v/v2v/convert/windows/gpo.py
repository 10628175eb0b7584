"""The local Group Policy machine startup script that starts the first-boot runner, and its undo.

`register` adds the runner to ``System32\\GroupPolicy\\Machine\\Scripts\\scripts.ini`` [Startup]
and raises gpt.ini's version (naming the Scripts extension) so Windows runs it as SYSTEM at the
next boot.  It returns an `Undo`: exactly what it changed, put back by the runner once every
queued script has run (`undo_batch`): the guest's own scripts.ini/gpt.ini restored from copies
staged at conversion time (gpt.ini with its version raised once more, so Windows re-reads the
policy and drops the cached entry at the following boot), files it created deleted, and
directories it created removed (``rd`` without /s: only when empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..guest import Guest

# Client-side extensions of a GPO with machine scripts: Scripts CSE + its admin tool.
SCRIPTS_CSE = "[{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{40B6664F-4972-11D1-A7CA-0000F87571E3}]"
STAGE = "gpo-restore"  # under the first-boot directory: the original files, as staged copies


@dataclass(frozen=True)
class Undo:
    """Windows paths: (staged copy, file it overwrites); files to delete; dirs to remove."""

    restore: tuple[tuple[str, str], ...]
    delete: tuple[str, ...]
    rmdirs: tuple[str, ...]  # deepest first


def win_path(drive: str, guest_path: str) -> str:
    return drive + guest_path.replace("/", "\\")


def register(guest: Guest, systemroot: str, drive: str, cmd: str, fb_dir: str) -> Undo:
    """Add `cmd` as a machine startup script; `fb_dir` (guest path) receives the staged copies."""
    gp = f"{systemroot}/System32/GroupPolicy"
    dirs = [gp, f"{gp}/Machine", f"{gp}/Machine/Scripts", f"{gp}/Machine/Scripts/Startup"]
    created = [d for d in dirs if not guest.is_dir(d)]
    guest.mkdir_p(dirs[-1])
    restore: list[tuple[str, str]] = []
    delete: list[str] = []
    stage = f"{fb_dir}/{STAGE}"

    def keep(path: str, original: bytes) -> None:
        guest.mkdir_p(stage)
        copy = f"{stage}/{path.rsplit('/', 1)[1]}"
        guest.write(copy, original)
        restore.append((win_path(drive, copy), win_path(drive, path)))

    scripts = f"{gp}/Machine/Scripts/scripts.ini"
    raw = guest.read(scripts) if guest.is_file(scripts) else None
    text, bom = decode_ini(raw)
    guest.write(scripts, encode_ini(add_startup_script(text, cmd), bom))
    if raw is None:
        delete.append(win_path(drive, scripts))
    else:
        keep(scripts, raw)

    gpt = f"{gp}/gpt.ini"
    graw = guest.read(gpt) if guest.is_file(gpt) else None
    gtext, gbom = decode_ini(graw)
    new = bump_gpt(gtext)
    guest.write(gpt, encode_ini(new, gbom))
    if graw is None:
        delete.append(win_path(drive, gpt))
    else:
        keep(gpt, encode_ini(restored_gpt(gtext, gpt_version(new) + 1), gbom))
    return Undo(
        tuple(restore), tuple(delete), tuple(win_path(drive, d) for d in reversed(created))
    )


def undo_batch(undo: Undo) -> str:
    """The runner's last step: unregister itself (`log` and `fb` are the runner's variables)."""
    out = [
        "echo %date% %time% pyv2v-firstboot: all scripts done, removing the startup script "
        'registration >> "%log%"'
    ]
    for copy, target in undo.restore:
        out.append(f'attrib -r -s -h "{target}" >> "%log%" 2>&1')
        out.append(f'copy /y "{copy}" "{target}" >> "%log%" 2>&1')
    for path in undo.delete:
        out.append(f'del /f /q /a "{path}" >> "%log%" 2>&1')
    for d in undo.rmdirs:
        out.append(f'rd "{d}" >> "%log%" 2>&1')
    if undo.restore:
        out.append(f'rd /s /q "%fb%{STAGE}" >> "%log%" 2>&1')
    out.append('echo %date% %time% pyv2v-firstboot: done, removing firstboot.bat >> "%log%"')
    out.append('(goto) 2>nul & del /f /q "%~f0"')
    return "\n".join(out) + "\n"


def decode_ini(raw: bytes | None) -> tuple[str, bool]:
    """Text and whether it was UTF-16 (Windows writes scripts.ini so, with a BOM)."""
    if raw is None:
        return "", False
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le", errors="replace"), True
    return raw.decode("latin-1"), False


def encode_ini(text: str, utf16: bool) -> bytes:
    crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return b"\xff\xfe" + crlf.encode("utf-16-le") if utf16 else crlf.encode("latin-1")


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


def gpt_version(text: str) -> int:
    for x in text.splitlines():
        key, _, val = x.partition("=")
        if key.strip().lower() == "version" and val.strip().isdigit():
            return int(val.strip())
    return 0


def _with_version(lines: list[str], version: int) -> list[str]:
    def is_version(x: str) -> bool:
        return x.partition("=")[0].strip().lower() == "version"

    if not any(is_version(x) for x in lines):
        return [*lines, f"Version={version}"]
    return [f"Version={version}" if is_version(x) else x for x in lines]


def bump_gpt(text: str) -> str:
    """gpt.ini naming the scripts extension, with its version raised so Windows re-reads it."""
    lines = [x for x in text.splitlines() if x.strip()] or ["[General]"]
    out = []
    seen_ext = False
    for x in lines:
        if x.partition("=")[0].strip().lower() == "gpcmachineextensionnames":
            out.append(x if SCRIPTS_CSE.lower() in x.lower() else f"{x}{SCRIPTS_CSE}")
            seen_ext = True
        else:
            out.append(x)
    if not seen_ext:
        out.append(f"gPCMachineExtensionNames={SCRIPTS_CSE}")
    return "\n".join(_with_version(out, gpt_version(text) + 1)) + "\n"


def restored_gpt(original: str, version: int) -> str:
    """The guest's own gpt.ini, at `version` (above ours, so the change is noticed)."""
    lines = [x for x in original.splitlines() if x.strip()] or ["[General]"]
    return "\n".join(_with_version(lines, version)) + "\n"
