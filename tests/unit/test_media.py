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


def test_payload_holds_every_pyv2v_module_the_p2v_client_imports() -> None:
    """The image's pyv2v is MODULES only: p2v's import closure (static, every `import` in the
    files reached) must stay inside it, or p2v dies on boot with an ImportError (seen: a new
    top-level module imported by p2v and missing from MODULES)."""
    missing, reached = payload.unshipped_imports()
    assert reached > 20, reached   # the walk really followed the client's imports
    assert missing == []


def test_media_build_refuses_a_payload_missing_an_imported_module(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The base image (with its own import check) is cached; each build adds the current code
    as a layer, so the layer's closure is checked at every build (the check that would have
    caught the missing hostkeys.py)."""
    monkeypatch.setattr(payload, "MODULES", tuple(m for m in payload.MODULES
                                                  if m != "hostkeys.py"))
    assert payload.unshipped_imports()[0] == ["hostkeys.py"]
    with pytest.raises(V2VError, match=r"internal: the p2v payload lacks modules p2v imports: "
                                       r"hostkeys\.py"):
        payload.install_pyv2v(str(tmp_path))
    assert not any(tmp_path.iterdir())


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
