"""The p2v field table: sizes, enums, hardware defaults, flags, config files, dump."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.p2v import cli, config
from pyv2v.p2v.hardware import CpuInfo, Hardware
from pyv2v.p2v.kernel_cmdline import Cmdline


@pytest.mark.parametrize("text,n", [("1024M", 1 << 30), ("4G", 4 << 30), ("512k", 512 << 10),
                                    ("2GiB", 2 << 30), ("1048576", 1 << 20)])
def test_sizes(text: str, n: int) -> None:
    assert config.parse_size("p2v.memory", text) == n


def test_bad_size_and_enum() -> None:
    with pytest.raises(V2VError, match="p2v.memory"):
        config.parse_size("p2v.memory", "lots")
    with pytest.raises(V2VError, match="one of none, sparse, preallocated"):
        config.apply_cmdline(config.Config(), Cmdline.from_string("p2v.oa=thick"))


def test_every_field_has_a_kernel_key_and_unique_flag() -> None:
    keys = [s.key for _, s in config.specs()]
    flags = [s.flag for _, s in config.specs() if s.flag]
    assert len(keys) == len(set(keys)) and len(flags) == len(set(flags))
    assert all(k.startswith("p2v.") for k in keys)


def hw() -> Hardware:
    return Hardware(hostname="web1.example.com", online_cpus=6, memory=16_000_000_000,
                    cpu=CpuInfo("Intel", None, 1, 6, 1, True, True, True), rtc_basis="utc",
                    disks=["sda", "nvme0n1"], removable=["sr0"], interfaces=["eth0"],
                    macs={"eth0": "52:54:00:12:34:56"})


def test_hardware_defaults() -> None:
    cfg = config.Config()
    config.apply_hardware(cfg, hw())
    assert cfg.guestname == "web1" and cfg.cores == 6 and cfg.memory == 16 << 30
    assert (cfg.cpu_vendor, cfg.acpi, cfg.apic, cfg.pae) == ("Intel", True, True, True)
    assert cfg.disks == ["sda", "nvme0n1"] and cfg.removable == ["sr0"]


def test_precedence_file_cmdline_flags(tmp_path: Path) -> None:
    f = tmp_path / "p2v.conf"
    f.write_text('# comment\nserver = from-file\nport=2200\np2v.output.format="qcow2"\n')
    ns = cli.build_parser().parse_args(["--config", str(f), "--port", "2300",
                                        "--disk", str(f), "--oo", "a=1", "--oo", "b=2,c=3"])
    cfg = cli.assemble(ns, Cmdline.from_string("p2v.server=from-cmdline p2v.port=2100"), hw())
    assert cfg.server == "from-cmdline" and cfg.port == 2300 and cfg.output_format == "qcow2"
    assert cfg.disks == [str(f)] and cfg.output_misc == ["a=1", "b=2", "c=3"]


def test_nbd_server_is_a_config_field(tmp_path: Path) -> None:
    assert config.Config().nbd_server == "nbdkit"
    cfg = config.Config()
    config.apply_cmdline(cfg, Cmdline.from_string("p2v.nbd_server=qemu-nbd"))
    assert cfg.nbd_server == "qemu-nbd" and "p2v.nbd_server=qemu-nbd\n" in config.dump(cfg)
    ns = cli.build_parser().parse_args(["--nbd-server", "qemu-nbd"])
    assert cli.assemble(ns, Cmdline(), None).nbd_server == "qemu-nbd"
    with pytest.raises(V2VError, match="one of nbdkit, qemu-nbd"):
        config.apply_cmdline(config.Config(), Cmdline.from_string("p2v.nbd_server=nbd"))


def test_ssh_target_from_the_config() -> None:
    cfg = config.Config(server="conv", port=2222, username="u", known_hosts="/kh",
                        hostkey="SHA256:x")
    t = cfg.ssh_target("/id")
    assert (t.host, t.port, t.user, t.identity, t.known_hosts, t.hostkey) == \
        ("conv", 2222, "u", "/id", "/kh", "SHA256:x")
    assert config.Config().ssh_target().identity is None


def test_config_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "bad.conf"
    f.write_text("nonsense\n")
    with pytest.raises(V2VError, match="expected key=value"):
        config.read_config_file(str(f))
    with pytest.raises(V2VError, match="cannot read config file"):
        config.read_config_file(str(tmp_path / "missing"))


def test_missing_disk_image(tmp_path: Path) -> None:
    ns = cli.build_parser().parse_args(["--disk", str(tmp_path / "nope.img")])
    with pytest.raises(V2VError, match="no such file"):
        cli.assemble(ns, Cmdline(), None)


def test_dump_round_trips_and_hides_the_password(tmp_path: Path) -> None:
    settings = dict(server="conv", guestname="my-host", memory=4 << 30, cores=2,
                    output_storage="/srv/my vms", disks=["sda", "sdb"], sudo=True)
    cfg = config.Config(password="s3cret", **settings)  # type: ignore[arg-type]
    text = config.dump(cfg)
    assert "s3cret" not in text and "p2v.auth.password=<hidden>" in text
    assert 'p2v.output.storage="/srv/my vms"' in text and "p2v.memory=4G" in text
    f = tmp_path / "dump.conf"
    f.write_text(text.replace("p2v.auth.password=<hidden>\n", ""))
    again = config.Config()
    config.apply_cmdline(again, config.read_config_file(str(f)))
    assert config.dump(again) == config.dump(config.Config(**settings))  # type: ignore[arg-type]


def test_hook_commands_are_argv() -> None:
    assert config.command_argv("sh -c 'echo hi > /tmp/x'") == ["sh", "-c", "echo hi > /tmp/x"]
    with pytest.raises(V2VError):
        config.command_argv("unterminated 'quote")
