"""GRUB configuration as text: menu entries of grub.cfg, grubenv blocks, BLS and legacy menus.

Pure functions over file contents (no guest access) so they are easy to test: parse the menu
entries of a generated grub.cfg (with submenus, ids and kernel paths), find and change its
default, read and write a grubenv block (exactly 1024 bytes), find the BLS entry and the legacy
``menu.lst`` title booting a kernel.  The converter edits generated files in place instead of
regenerating them inside the appliance, which would write the appliance's device names.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

GRUBENV_SIZE = 1024
_OPEN_RE = re.compile(
    r"""^\s*(?P<kind>menuentry|submenu)\s+(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<w>\S+))"""
    r"""(?P<rest>.*)\{\s*$""")
_ID_RE = re.compile(r"""(?:\$menuentry_id_option|--id)[ =]+(?:'([^']*)'|"([^"]*)"|(\S+))""")
_LINUX_RE = re.compile(r"^\s*(?:linux|linux16|linuxefi|kernel)\s+(\S+)")
_DEFAULT_RE = re.compile(r"""^(\s*set\s+default=)("[^"]*"|'[^']*'|\S*)(.*)$""")


@dataclass(frozen=True)
class MenuEntry:
    titles: tuple[str, ...]       # titles from the top level down (submenu, …, entry)
    ids: tuple[str | None, ...]   # ids, same shape
    indexes: tuple[int, ...]      # positions, same shape
    kernel: str | None            # basename of the kernel it boots (vmlinuz-VERSION)

    def default_value(self) -> str:
        """The value for ``set default=`` / ``saved_entry=`` selecting this entry."""
        if all(self.ids):
            return ">".join(i for i in self.ids if i)
        return ">".join(self.titles)


def menu_entries(text: str) -> list[MenuEntry]:
    """The bootable menu entries of a grub.cfg, in order."""
    entries: list[MenuEntry] = []
    # stack of open blocks: (kind, title, id, index) — "other" for functions and such
    stack: list[tuple[str, str, str | None, int]] = []
    counters: list[int] = [0]
    kernel: str | None = None
    for line in text.splitlines():
        m = _OPEN_RE.match(line)
        if m:
            title = m.group("sq") if m.group("sq") is not None else (m.group("dq") or m.group("w"))
            idm = _ID_RE.search(m.group("rest"))
            ident = next((g for g in idm.groups() if g is not None), None) if idm else None
            stack.append((m.group("kind"), title, ident, counters[-1]))
            counters[-1] += 1
            counters.append(0)
            kernel = None
            continue
        if line.rstrip().endswith("{"):
            stack.append(("other", "", None, -1))
            counters.append(0)
            continue
        if line.strip() == "}" and stack:
            kind = stack[-1][0]
            if kind == "menuentry":
                blocks = [b for b in stack if b[0] in ("menuentry", "submenu")]
                entries.append(MenuEntry(tuple(b[1] for b in blocks), tuple(b[2] for b in blocks),
                                         tuple(b[3] for b in blocks), kernel))
            stack.pop()
            counters.pop()
            continue
        lm = _LINUX_RE.match(line)
        if lm and stack and stack[-1][0] == "menuentry":
            kernel = posixpath.basename(lm.group(1))
    return entries


def _unquote(v: str) -> str:
    return v[1:-1] if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"" else v


def static_default(text: str) -> str | None:
    """The value of the unconditional ``set default=`` (not the next_entry one), if any."""
    found = None
    for line in text.splitlines():
        m = _DEFAULT_RE.match(line)
        if m and "next_entry" not in m.group(2):
            found = _unquote(m.group(2))
    return found


def set_static_default(text: str, value: str) -> str:
    """Replace the value of every ``set default=`` that is not the next_entry one."""
    out = []
    for line in text.splitlines(keepends=True):
        m = _DEFAULT_RE.match(line.rstrip("\n"))
        if m and "next_entry" not in m.group(2):
            line = f'{m.group(1)}"{value}"{m.group(3)}' + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)


def resolve(entries: list[MenuEntry], value: str) -> MenuEntry | None:
    """The entry a default value (index path, ids or titles joined by '>') selects."""
    parts = value.split(">")
    for e in entries:
        if len(e.titles) != len(parts):
            continue
        if all(p == str(i) or p == t or (ident is not None and p == ident)
               for p, i, t, ident in zip(parts, e.indexes, e.titles, e.ids, strict=True)):
            return e
    return None


# grubenv -----------------------------------------------------------------------------------

def parse_grubenv(data: str) -> dict[str, str]:
    env = {}
    for line in data.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        env[k] = v
    return env


def format_grubenv(env: dict[str, str]) -> str:
    body = "# GRUB Environment Block\n" + "".join(f"{k}={v}\n" for k, v in env.items())
    if len(body) > GRUBENV_SIZE:
        raise ValueError("grubenv contents exceed 1024 bytes")
    return body + "#" * (GRUBENV_SIZE - len(body))


# BLS and legacy menus ---------------------------------------------------------------------

def bls_kernel(text: str) -> str | None:
    """Basename of the kernel a BLS entry boots."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "linux":
            return posixpath.basename(parts[1])
    return None


_LEGACY_DEFAULT_RE = re.compile(r"^(\s*default[\s=]+)(\S+)(.*)$")


def legacy_titles(text: str) -> list[str | None]:
    """Kernel basename booted by each ``title`` block of a menu.lst / grub.conf, in order."""
    kernels: list[str | None] = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("title"):
            kernels.append(None)
        elif kernels and s.startswith("kernel") and len(s.split()) >= 2:
            kernels[-1] = posixpath.basename(s.split()[1])
    return kernels


def legacy_default(text: str) -> str | None:
    for line in text.splitlines():
        m = _LEGACY_DEFAULT_RE.match(line)
        if m:
            return m.group(2)
    return None


def set_legacy_default(text: str, index: int) -> str:
    out, done = [], False
    for line in text.splitlines():
        m = _LEGACY_DEFAULT_RE.match(line)
        if m and not done:
            line, done = f"{m.group(1)}{index}{m.group(3)}", True
        out.append(line)
    if not done:
        out.insert(0, f"default={index}")
    return "\n".join(out) + "\n"
