"""Small parts of the TUI: field parsing, device details, network map, engine adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.errors import V2VError
from pyv2v.p2v.config import Config
from pyv2v.p2v.engine import RealEngine, preferred
from pyv2v.p2v.tui.conversion_form import initial_networks, output_choices
from pyv2v.p2v.tui.devices import disk_info, human_size, nic_info
from pyv2v.p2v.tui.fields import parse_text
from pyv2v.p2v.tui.running import progress_line

from .test_tui_support import fake_sysfs


def test_parse_text_uses_the_config_table_rules() -> None:
    assert parse_text("memory", "4G") == 4 << 30
    assert parse_text("port", " 2222 ") == 2222
    assert parse_text("output_misc", "a=1, b=2") == ["a=1", "b=2"]
    assert parse_text("output_connection", "") is None
    assert parse_text("hostkey", "SHA256:" + "x" * 43) == "SHA256:" + "x" * 43
    for attr, text, msg in (("memory", "", "required"), ("memory", "1k", "between 256M and 64T"),
                            ("port", "0", "between"), ("cores", "two", "expected a number"),
                            ("server", "a b", "no spaces"), ("guestname", "a/b", "letters"),
                            ("output_misc", "=x", "key=value"), ("identity", "x", "URL")):
        with pytest.raises(V2VError, match=msg):
            parse_text(attr, text)


def test_device_details_from_sysfs(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path)
    assert disk_info("/dev/sda", root).size == 16 << 30
    info = disk_info("sda", root)
    assert (info.size, info.model, info.serial) == (16 << 30, "QEMU HARDDISK", "QM00001")
    img = tmp_path / "d.img"
    img.write_bytes(b"\0" * 4096)
    assert disk_info(str(img)).size == 4096
    assert disk_info("nosuch", root).size is None
    assert nic_info("eth0", {"eth0": "52:54:00:00:00:01"}, root).link == "up"
    assert nic_info("eth1", {}, root).link == "down"
    assert nic_info("wl0", {}, root).link == "unknown"
    assert [human_size(n) for n in (0, 1023, 1536, 16 << 30, None)] == \
        ["0", "1023", "1.5K", "16.0G", "?"]


def test_network_map_and_output_choices() -> None:
    assert initial_networks(["eth0:prod", "lab"], ["eth0", "eth1"]) == \
        {"eth0": "prod", "eth1": "lab"}
    assert initial_networks([], ["eth0"]) == {"eth0": "default"}
    assert output_choices(["disk", "null"], "local") == (["disk", "null"], "disk")
    assert output_choices(["null", "qemu"], "local") == (["null", "qemu"], "null")
    assert output_choices([], "local") == (["local"], "local")


def test_progress_line() -> None:
    line = progress_line("sda", 1 << 30, 4 << 30, "#", ".")
    assert line == "sda        #######.....................  25%  1.0G / 4.0G"
    assert progress_line("sdb", 0, 0, "#", ".").endswith("  0%  0")


def test_engine_host_keys_and_power_actions(tmp_path: Path) -> None:
    assert preferred([("ssh-rsa", "R"), ("ssh-ed25519", "E")]) == ("ssh-ed25519", "E")
    assert preferred([("ssh-rsa", "R")]) == ("ssh-rsa", "R")
    known = tmp_path / "known_hosts"
    known.write_text("[h]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOjT\n")
    engine = RealEngine(actions={"reboot": ["touch", str(tmp_path / "rebooted")],
                                 "poweroff": ["false"]})
    cfg = Config(server="h", port=2222, known_hosts=str(known))
    assert [k for k, _ in engine.recorded_keys(cfg)] == ["ssh-ed25519"]
    assert engine.recorded_keys(Config(server="other", known_hosts=str(known))) == []
    engine.power("reboot")
    assert (tmp_path / "rebooted").exists()
    with pytest.raises(V2VError, match="false failed"):
        engine.power("poweroff")
