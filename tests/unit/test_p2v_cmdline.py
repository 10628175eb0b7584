"""Kernel command line parsing and the p2v.* key rules (PROTOCOL.md §6)."""

from __future__ import annotations

import pytest

from pyv2v.errors import V2VError
from pyv2v.p2v import config
from pyv2v.p2v.kernel_cmdline import Cmdline, parse


def test_parse_words_quotes_and_flags() -> None:
    text = 'BOOT_IMAGE=/vmlinuz quiet p2v.server=conv p2v.name="my host" p2v.sudo p2v.o= x'
    assert parse(text) == [("BOOT_IMAGE", "/vmlinuz"), ("quiet", ""), ("p2v.server", "conv"),
                           ("p2v.name", "my host"), ("p2v.sudo", ""), ("p2v.o", ""), ("x", "")]


def test_parse_edge_cases() -> None:
    assert parse("") == []
    assert parse("  a=1\tb=2\n") == [("a", "1"), ("b", "2")]
    assert parse('a="unterminated value') == [("a", "unterminated value")]
    assert parse('a="x"b=2') == [("a", "x"), ("b", "2")]  # the quote ends the value
    assert parse("a=b=c") == [("a", "b=c")]


def test_first_occurrence_wins() -> None:
    c = Cmdline.from_string("p2v.port=1 p2v.port=2")
    assert c.get("p2v.port") == "1"


def test_canonical_beats_alias_in_any_order() -> None:
    c = Cmdline.from_string("p2v.server=alias p2v.remote.server=canonical")
    assert c.lookup("p2v.remote.server", "p2v.server") == ("p2v.remote.server", "canonical")
    cfg = config.Config()
    config.apply_cmdline(cfg, c)
    assert cfg.server == "canonical"


@pytest.mark.parametrize("value,expected", [
    ("", True), ("1", True), ("true", True), ("t", True), ("yes", True), ("y", True),
    ("on", True), ("ON", True), ("0", False), ("false", False), ("no", False), ("off", False),
])
def test_booleans(value: str, expected: bool) -> None:
    cfg = config.Config()
    config.apply_cmdline(cfg, Cmdline.from_string(f"p2v.sudo={value}"))
    assert cfg.sudo is expected


def test_bare_boolean_key_is_true() -> None:
    cfg = config.Config()
    config.apply_cmdline(cfg, Cmdline.from_string("p2v.vcpu.phys_topo p2v.skip_test_connection"))
    assert cfg.phys_topo and cfg.skip_test_connection


def test_bad_boolean_is_an_error() -> None:
    with pytest.raises(V2VError, match="invalid boolean"):
        config.apply_cmdline(config.Config(), Cmdline.from_string("p2v.sudo=maybe"))


def test_all_reference_aliases() -> None:
    text = ("p2v.server=s p2v.port=2222 p2v.username=u p2v.password=pw p2v.identity=file:///k "
            "p2v.sudo p2v.name=g p2v.network=em1:ovirtmgmt,other p2v.o=libvirt p2v.oa=sparse "
            "p2v.oc=qemu:///system p2v.of=qcow2 p2v.os=pool p2v.oo=a=1,b=2")
    cfg = config.Config()
    assert config.apply_cmdline(cfg, Cmdline.from_string(text)) == []
    assert (cfg.server, cfg.port, cfg.username, cfg.password) == ("s", 2222, "u", "pw")
    assert cfg.identity == "file:///k" and cfg.sudo and cfg.guestname == "g"
    assert cfg.network_map == ["em1:ovirtmgmt", "other"]
    assert (cfg.output_type, cfg.output_allocation, cfg.output_connection) == \
        ("libvirt", "sparse", "qemu:///system")
    assert (cfg.output_format, cfg.output_storage, cfg.output_misc) == \
        ("qcow2", "pool", ["a=1", "b=2"])


def test_unknown_keys_reported() -> None:
    unknown = config.apply_cmdline(config.Config(), Cmdline.from_string("p2v.nope=1 quiet"))
    assert unknown == ["p2v.nope"]


def test_proc_cmdline_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "cmdline"
    f.write_text("ro p2v.server=x\n")
    c = Cmdline.from_proc(str(f))
    assert c.source == "proc" and c.get("p2v.server") == "x"
    assert Cmdline.from_proc(str(tmp_path / "missing")).source == "none"
