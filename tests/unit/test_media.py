"""p2v-make-media without building anything: baked settings checked by p2v's own field table,
the boot-time generator's choice of kernel mode or console UI, the GRUB menu, the payload (the
p2v part of pyv2v only), and the command's one-line errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.media import aptsource, assemble, imagefiles, payload
from pyv2v.media.cli import main


def test_config_lines_canonical_and_checked() -> None:
    lines = assemble.config_lines(
        [
            ("server", "conv.example.com"),
            ("p2v.port", "2222"),
            ("p2v.o", "local"),
            ("p2v.os", "/srv/out dir"),
        ]
    )
    assert lines == [
        "p2v.remote.server=conv.example.com",
        "p2v.remote.port=2222",
        "p2v.output.type=local",
        'p2v.output.storage="/srv/out dir"',
    ]
    with pytest.raises(V2VError, match="between 1 and 65535"):
        assemble.config_lines([("p2v.port", "0")])
    with pytest.raises(V2VError, match="identity key"):
        assemble.config_lines([("p2v.password", "s3cret")])
    with pytest.raises(V2VError, match="unknown p2v setting"):
        assemble.config_lines([("p2v.nope", "1")])


def test_baked_config_is_readable_by_p2v(tmp_path: Path) -> None:
    from pyv2v.p2v import config

    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
    tree = tmp_path / "tree"
    assemble.write_config(tree, [("p2v.server", "10.0.2.2"), ("p2v.name", "web1")], key)
    conf = tree / imagefiles.CONF.lstrip("/")
    cfg = config.Config()
    assert config.apply_cmdline(cfg, config.read_config_file(str(conf))) == []
    assert (cfg.server, cfg.guestname) == ("10.0.2.2", "web1")
    assert cfg.identity == f"file://{assemble.IDENTITY}"
    assert (tree / assemble.IDENTITY.lstrip("/")).stat().st_mode & 0o777 == 0o600


def run_generator(tmp_path: Path, cmdline: str, conf: str = "") -> list[str]:
    gen = tmp_path / "gen.sh"
    gen.write_text(imagefiles.GENERATOR)
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    (tmp_path / "p2v.conf").write_text(conf)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYV2V_PROC_CMDLINE": str(tmp_path / "cmdline"),
        "PYV2V_P2V_CONF": str(tmp_path / "p2v.conf"),
    }
    subprocess.run(["sh", str(gen), str(out)], check=True, env=env)
    return sorted(os.listdir(out / "multi-user.target.wants"))


@pytest.mark.parametrize(
    ("cmdline", "conf", "units"),
    [
        ("quiet", "", ["p2v-console@tty1.service"]),
        (
            "quiet console=tty0 console=ttyS0,115200n8",
            "",
            ["p2v-console@tty1.service", "p2v-console@ttyS0.service"],
        ),
        ("quiet p2v.server=10.0.2.2 console=ttyS0", "", ["p2v-kernel.service"]),
        ("p2v.remote.server=conv", "", ["p2v-kernel.service"]),
        ("p2v.server= *", "", ["p2v-console@tty1.service"]),  # empty: no server
        ("quiet", "p2v.remote.server=conv\n", ["p2v-kernel.service"]),  # baked server
        ("quiet", "#p2v.remote.server=conv\n", ["p2v-console@tty1.service"]),
    ],
)
def test_generator_picks_kernel_mode_or_console_ui(
    tmp_path: Path, cmdline: str, conf: str, units: list[str]
) -> None:
    assert run_generator(tmp_path, cmdline, conf) == units


def test_grub_menu_serial_entry_and_default() -> None:
    cfg = assemble.grub_cfg("quiet p2v.server=h", serial_default=True)
    assert "set default=1" in cfg
    assert "linux /boot/vmlinuz quiet p2v.server=h console=tty0 console=ttyS0,115200n8" in cfg
    assert "set default=0" in assemble.grub_cfg("quiet", serial_default=False)


def test_payload_is_the_p2v_part_only() -> None:
    rels = {rel for _src, rel in payload.pyv2v_files()}
    assert "pyv2v/p2v/cli.py" in rels and "pyv2v/p2v/tui/app.py" in rels
    assert not any(r.startswith(("pyv2v/v2v/", "pyv2v/fleet/", "pyv2v/media/")) for r in rels)
    names = {d.metadata["Name"].lower() for d in payload.distributions()}
    assert {"textual", "rich"} <= names and "lxml" not in names and "celery" not in names


def _pyv2v_imports(path: Path, pkg_root: Path) -> set[str]:
    """pyv2v modules (paths relative to the package, without .py) a file imports."""
    import ast

    here = path.relative_to(pkg_root).with_suffix("").parts[:-1]   # the file's package
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level + 1])
            elif (node.module or "").split(".")[0] == "pyv2v":
                base = []
                node_mod = (node.module or "").split(".")[1:]
                found.add("/".join(node_mod)) if node_mod else None
                continue
            else:
                continue
            mod = base + (node.module.split(".") if node.module else [])
            found.add("/".join(mod))
            for alias in node.names:   # `from .. import hostkeys` names a module
                found.add("/".join([*mod, alias.name]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pyv2v":
                    found.add("/".join(alias.name.split(".")[1:]))
    return found


def test_payload_holds_every_pyv2v_module_the_p2v_client_imports() -> None:
    """The image's pyv2v is MODULES only: p2v's import closure (static, every `import` in the
    files reached) must stay inside it, or p2v dies on boot with an ImportError (seen: a new
    top-level module imported by p2v and missing from MODULES)."""
    pkg_root = Path(payload.pyv2v.__file__).parent
    shipped = {rel.removeprefix("pyv2v/") for _src, rel in payload.pyv2v_files()}
    todo = [pkg_root / "p2v" / "cli.py", pkg_root / "p2v" / "tui" / "app.py"]
    seen: set[Path] = set()
    missing = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for mod in _pyv2v_imports(f, pkg_root):
            for cand in (pkg_root / f"{mod}.py", pkg_root / mod / "__init__.py"):
                if cand.is_file():
                    rel = str(cand.relative_to(pkg_root))
                    if rel not in shipped:
                        missing.add(rel)
                    todo.append(cand)
    assert len(seen) > 20, seen   # the walk really followed the client's imports
    assert not missing, f"p2v imports modules the media do not ship: {sorted(missing)}"


def test_mirror_from_deb822() -> None:
    text = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    assert aptsource.from_deb822(text, "bookworm") == "http://mirror.example/debian"
    assert aptsource.from_deb822(text, "trixie") is None


def test_cli_bad_setting_is_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["-O", str(tmp_path), "--set", "p2v.memory=lots"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "p2v-make-media: error:" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_status_script_prints_address_route_and_keymap(tmp_path: Path) -> None:
    """p2v-status (kernel mode's ExecStartPre) with `ip` and `dumpkeys` answering as on a
    German-keymap, static-address boot: one console line each."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ip").write_text(
        '#!/bin/sh\ncase "$*" in\n'
        "  *address*) echo 'ens4             UP             10.0.2.20/24 ' ;;\n"
        "  *route*) echo 'default via 10.0.2.2 dev ens4 proto static' ;;\nesac\n"
    )
    (bindir / "dumpkeys").write_text(
        "#!/bin/sh\n[ \"$1 $2\" = '-C /dev/tty1' ] || exit 1\n"
        "printf 'keymaps 0-2\\nkeycode  20 = +t\\nkeycode  21 = +z    +Z    Control_z\\n'\n"
    )
    for f in bindir.iterdir():
        f.chmod(0o755)
    script = tmp_path / "p2v-status"
    script.write_text(imagefiles.STATUS)
    env = {**os.environ, "PATH": f"{bindir}:/usr/bin:/bin"}
    out = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True).stdout
    assert out.splitlines() == [
        "p2v media: address ens4             UP             10.0.2.20/24 ",
        "p2v media: route default via 10.0.2.2 dev ens4 proto static",
        "p2v media: keyboard: keycode 21 types +z",
    ]
    assert "ExecStartPre=-/usr/lib/pyv2v/p2v-status" in imagefiles.KERNEL_UNIT
    assert imagefiles.FILES["/usr/lib/pyv2v/p2v-status"][1] == 0o755


@pytest.mark.parametrize(
    "cmdline, conf, loaded",
    [
        ("quiet vconsole.keymap=de", "", "-q -C /dev/tty1 de"),
        ("quiet", 'KEYMAP="fr"\n', "-q -C /dev/tty1 fr"),
        ("vconsole.keymap=de-latin1", "KEYMAP=fr\n", "-q -C /dev/tty1 de-latin1"),
        ("quiet", "", None),  # no layout asked for: the kernel's default (US) stays
    ],
)
def test_keymap_script_loads_the_asked_layout(
    tmp_path: Path, cmdline: str, conf: str, loaded: str | None
) -> None:
    """Debian's systemd has no systemd-vconsole-setup: p2v-keymap (sysinit) runs loadkeys."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "loadkeys.args"
    (bindir / "loadkeys").write_text(f'#!/bin/sh\necho "$*" > {record}\n')
    (bindir / "loadkeys").chmod(0o755)
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    (tmp_path / "vconsole.conf").write_text(conf)
    script = tmp_path / "p2v-keymap"
    script.write_text(imagefiles.KEYMAP)
    env = {
        **os.environ,
        "PATH": f"{bindir}:/usr/bin:/bin",
        "PYV2V_PROC_CMDLINE": str(tmp_path / "cmdline"),
        "PYV2V_VCONSOLE_CONF": str(tmp_path / "vconsole.conf"),
    }
    assert subprocess.run(["sh", str(script)], env=env).returncode == 0
    assert (record.read_text().strip() if record.exists() else None) == loaded
    link = "/etc/systemd/system/sysinit.target.wants/p2v-keymap.service"
    assert imagefiles.LINKS[link] == "/usr/lib/systemd/system/p2v-keymap.service"
    assert "After=" in imagefiles.KERNEL_UNIT and "p2v-keymap.service" in imagefiles.KERNEL_UNIT
