"""What of pyv2v goes into the image: the p2v client and the shared modules it imports (never
v2v, fleet, media or the test harness), plus the pure-Python distributions it needs that Debian
12 does not ship new enough (textual, rich and their requirements), copied from the builder's
own installation by their RECORD files.  lxml comes from Debian (python3-lxml).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as md
import os
import re
import shutil
from pathlib import Path

import pyv2v

from ..errors import V2VError

# The p2v client's part of pyv2v (relative to the pyv2v package directory).  The base image
# build imports pyv2v.p2v.cli and pyv2v.p2v.tui.app inside the image; every build (the current
# code is a layer over the cached base) checks the static import closure (unshipped_imports).
MODULES = (
    "__init__.py",
    "devnames.py",
    "errors.py",
    "hostkeys.py",
    "log.py",
    "names.py",
    "nbd.py",
    "process.py",
    "rates.py",
    "ssh.py",
    "libvirt_xml",
    "p2v",
)
FROM_DEBIAN = {"lxml"}  # python3-lxml in the image
_REQ = re.compile(r"^\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?\s*([^;]*)(?:;(.*))?$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wanted(marker: str | None, extras: set[str]) -> bool:
    if not marker:
        return True
    wanted = re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    return bool(set(wanted) & extras) if wanted else True


def distributions() -> list[md.Distribution]:
    """The installed distributions p2v needs at run time (pyv2v's own requirements, no extras,
    and theirs, with the extras they ask for), minus what Debian provides."""
    todo: list[tuple[str, set[str]]] = [("pyv2v", set())]
    seen: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()
    while todo:
        name, extras = todo.pop()
        key = (_norm(name), ",".join(sorted(extras)))
        if key in done:
            continue
        done.add(key)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise V2VError(
                f"p2v needs the Python package {name}, which is not installed "
                "here: install pyv2v with its dependencies first"
            ) from None
        if _norm(name) != "pyv2v" and _norm(name) not in FROM_DEBIAN:
            seen[_norm(name)] = dist
        for req in dist.requires or []:
            m = _REQ.match(req)
            if m and _wanted(m.group(4), extras) and _norm(m.group(1)) not in FROM_DEBIAN:
                sub = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
                todo.append((m.group(1), sub))
    return [seen[k] for k in sorted(seen)]


def _files(dist: md.Distribution) -> list[tuple[Path, str]]:
    """(absolute source, path relative to site-packages) of a distribution's files."""
    out = []
    for f in dist.files or []:
        rel = str(f)
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        out.append((Path(str(dist.locate_file(f))), rel))
    return out


def pyv2v_files() -> list[tuple[Path, str]]:
    base = Path(pyv2v.__file__).parent
    out = []
    for item in MODULES:
        path = base / item
        if path.is_dir():
            out += [
                (p, "pyv2v/" + str(p.relative_to(base)))
                for p in sorted(path.rglob("*.py"))
                if "__pycache__" not in p.parts
            ]
        else:
            out.append((path, "pyv2v/" + item))
    return out


def deps_files() -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for dist in distributions():
        files += _files(dist)
    return sorted(files, key=lambda f: f[1])


def deps_digest() -> str:
    """Hash of the dependency files copied into the cached base (part of its key); pyv2v's
    own code is not in the base: every media build adds the current code as a layer."""
    h = hashlib.sha256()
    for src, rel in deps_files():
        if src.is_file():
            h.update(rel.encode() + b"\0" + hashlib.sha256(src.read_bytes()).digest())
    return h.hexdigest()


def _copy(files: list[tuple[Path, str]], site_packages: str) -> None:
    for src, rel in files:
        if not src.is_file():
            continue
        dst = os.path.join(site_packages, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)


def install_deps(site_packages: str) -> list[str]:
    """Copy the dependencies into `site_packages` (a host path inside the image tree);
    returns them as name==version."""
    _copy(deps_files(), site_packages)
    return [f"{d.metadata['Name']}=={d.version}" for d in distributions()]


def _pyv2v_imports(path: Path, pkg_root: Path) -> set[str]:
    """pyv2v modules (paths relative to the package, without .py) a file imports."""
    here = path.relative_to(pkg_root).with_suffix("").parts[:-1]  # the file's package
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parts = node.module.split(".") if node.module else []
            if node.level:
                mod = list(here[: len(here) - node.level + 1]) + parts
            elif parts[:1] == ["pyv2v"]:
                mod = parts[1:]
            else:
                continue
            if mod:
                found.add("/".join(mod))
            for alias in node.names:  # `from .. import hostkeys` names a module
                found.add("/".join([*mod, alias.name]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pyv2v":
                    found.add("/".join(alias.name.split(".")[1:]))
    return found


ENTRY_POINTS = ("p2v/cli.py", "p2v/tui/__init__.py", "p2v/tui/app.py")  # tui: by name


def unshipped_imports() -> tuple[list[str], int]:
    """pyv2v modules the client's static import closure (from ENTRY_POINTS) reaches that
    MODULES does not ship, and how many files the walk read."""
    pkg_root = Path(pyv2v.__file__).parent
    shipped = {rel.removeprefix("pyv2v/") for _src, rel in pyv2v_files()}
    todo = [pkg_root / e for e in ENTRY_POINTS]
    seen: set[Path] = set()
    missing: set[str] = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        rel = f.relative_to(pkg_root)
        if str(rel) not in shipped:
            missing.add(str(rel))
        # importing a module runs its packages' __init__ first
        todo += [pkg_root / d / "__init__.py" for d in rel.parents]
        for mod in _pyv2v_imports(f, pkg_root):
            todo += [c for c in (pkg_root / f"{mod}.py", pkg_root / mod / "__init__.py")
                     if c.is_file()]
    return sorted(missing), len(seen)


def install_pyv2v(site_packages: str) -> None:
    """Copy the p2v part of pyv2v into `site_packages`, refusing a payload that misses a
    module the client imports (p2v would die on boot with an ImportError)."""
    missing, _ = unshipped_imports()
    if missing:
        raise V2VError(f"internal: the p2v payload lacks modules p2v imports: "
                       f"{', '.join(missing)} (add them to media/payload.py MODULES)")
    _copy(pyv2v_files(), site_packages)
