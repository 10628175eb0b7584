"""Property tests (hypothesis) for every parser of untrusted input (issue 10).

Kernel command line → Config → physical.xml, p2v config files, physical.xml built from arbitrary
config values, and the `-i libvirtxml` reader.  The property is always the same: a valid result,
or a V2VError whose message is one non-empty line: never another exception (the entry points
turn anything else into an internal error).  The suite runs PYV2V_FUZZ_EXAMPLES examples per
test (default 300, ~20 s in all); a deeper run: `PYV2V_FUZZ_EXAMPLES=10000 pytest …`.
"""

from __future__ import annotations

import os
import string
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyv2v.errors import V2VError
from pyv2v.libvirt_xml import parse
from pyv2v.p2v import config, physical_xml
from pyv2v.p2v.config import Config
from pyv2v.p2v.kernel_cmdline import Cmdline
from pyv2v.p2v.kernel_cmdline import parse as parse_cmdline
from pyv2v.v2v.inputs.base import InputOptions
from pyv2v.v2v.inputs.libvirtxml import LibvirtXMLInput

T = TypeVar("T")
EXAMPLES = int(os.environ.get("PYV2V_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KEYS = sorted({k for _, spec in config.specs() for k in (spec.key, spec.alias) if k})
# Characters that break naive parsers: controls, quotes, XML specials, separators, non-ASCII.
NASTY = "\x00\x01\x07\x0b\x0c\x1b\x7f\t\n\r \"'<>&=,:;/\\[]{}$`*?#%\u00a0\u2028\ufeff\ud7ff"
chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(NASTY),
                  st.sampled_from(string.ascii_letters + string.digits + ".-_"))
values = st.one_of(st.text(chars, max_size=30), st.sampled_from(
    ["", "0", "1", "-1", "yes", "off", "4G", "1024M", "99999999999999999999P", "utc",
     "localtime", "sparse", "sda,sdb", "/dev/sda", "eth0:net,default", "local", "\"", "a=b"]))


def outcome(fn: Callable[[], T]) -> T | None:
    """Run fn: its value, or None after a one-line V2VError; anything else fails (the entry
    points catch V2VError only: a ValueError from lxml or a codec would be an internal error)."""
    try:
        return fn()
    except V2VError as e:
        text = str(e)
        assert text.strip() and "\n" not in text and "\r" not in text, repr(text)
        return None


def physical(cfg: Config) -> bytes | None:
    """physical.xml from cfg (one TCP port per disk); when built it must be well-formed."""
    xml = outcome(lambda: physical_xml.build(cfg, list(range(50000, 50000 + len(cfg.disks))),
                                             {"eth0": "52:54:00:12:34:56"}, (1, 2, 1),
                                             "x86_64", "bios"))
    if xml is not None:
        assert parse(xml).tag == "domain"
    return xml


SPECS = {k: spec for _, spec in config.specs() for k in (spec.key, spec.alias) if k}
TEXT_KEYS = sorted(k for k, spec in SPECS.items() if spec.kind in ("str", "list"))
VALID = {"int": ["0", "4", "22", "2222"], "bool": ["", "1", "no", "on"], "size": ["4G", "1024M"]}


@st.composite
def setting(draw: st.DrawFn) -> tuple[str, str]:
    """A key and its value: free text for text keys, mostly well-typed values for the others
    (one bad number ends the parse, so the text keys get to physical.xml)."""
    key = draw(st.one_of(st.sampled_from(TEXT_KEYS), st.sampled_from(KEYS),
                         st.text(chars, min_size=1, max_size=10)))
    spec = SPECS.get(key)
    if spec is None or spec.kind in ("str", "list") or draw(st.integers(0, 9)) == 0:
        return key, draw(values)
    return key, draw(st.sampled_from(list(spec.choices) or VALID[spec.kind]))


@st.composite
def kernel_cmdlines(draw: st.DrawFn) -> str:
    """Mostly p2v.* keys with nasty values, some quoted, some noise; or any text at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(chars, max_size=200))
    words = []
    for _ in range(draw(st.integers(0, 12))):
        key, value = draw(setting())
        form = draw(st.sampled_from(["{k}", "{k}=", "{k}={v}", "{k}={v}", '{k}="{v}"',
                                     '{k}="{v}']))
        words.append(form.format(k=key, v=value))
    return draw(st.sampled_from([" ", "  ", "\t", "\n"])).join(words)


@FUZZ
@given(kernel_cmdlines())
def test_kernel_command_line(text: str) -> None:
    pairs = parse_cmdline(text)  # splitting never fails
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)
    cfg = Config(guestname="p2v", disks=["sda"], cores=1, memory=1 << 30)
    if outcome(lambda: config.apply_cmdline(cfg, Cmdline.from_string(text))) is not None:
        physical(cfg)


@FUZZ
@given(st.lists(st.one_of(
    st.text(chars, max_size=60),
    st.builds(lambda kv, short, q: f"{kv[0][4 * short:]}={q}{kv[1]}{q}", setting(),
              st.booleans(), st.sampled_from(["", '"'])),
    st.sampled_from(["# comment", "", "   ", "=", "=x", "p2v.server"])), max_size=15))
def test_config_file(lines: list[str]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".conf", encoding="utf-8",
                                     errors="surrogatepass") as f:
        f.write("\n".join(lines))
        f.flush()
        cmdline = outcome(lambda: config.read_config_file(f.name))
    if cmdline is None:
        return
    cfg = Config(guestname="p2v", disks=["sda"], cores=1, memory=1 << 30)
    if outcome(lambda: config.apply_cmdline(cfg, cmdline)) is not None:
        physical(cfg)


@FUZZ
@given(st.binary(max_size=120), st.booleans())
def test_raw_bytes_as_config_file_or_proc_cmdline(data: bytes, as_proc: bool) -> None:
    """Not even UTF-8: /proc/cmdline or a config file with arbitrary bytes."""
    with tempfile.NamedTemporaryFile("wb") as f:
        f.write(data)
        f.flush()
        if as_proc:
            cmdline: Cmdline | None = Cmdline.from_proc(f.name)
        else:
            cmdline = outcome(lambda: config.read_config_file(f.name))
    cfg = Config(guestname="p2v", disks=["sda"], cores=1, memory=1 << 30)
    if cmdline is not None and outcome(lambda: config.apply_cmdline(cfg, cmdline)) is not None:
        physical(cfg)


names = st.text(chars, max_size=20)
name_lists = st.lists(names, max_size=4)


@FUZZ
@given(st.builds(
    Config, guestname=st.one_of(st.none(), names), cores=st.integers(-5, 1 << 40),
    memory=st.integers(-(1 << 20), 1 << 62), cpu_vendor=st.one_of(st.none(), names),
    cpu_model=st.one_of(st.none(), names), acpi=st.booleans(), apic=st.booleans(),
    pae=st.booleans(), rtc_basis=st.sampled_from(["unknown", "utc", "localtime"]),
    rtc_offset=st.integers(-(1 << 40), 1 << 40), phys_topo=st.booleans(),
    disks=st.lists(names, min_size=1, max_size=4), removable=name_lists,
    interfaces=name_lists, network_map=name_lists))
def test_physical_xml_from_any_config(cfg: Config) -> None:
    physical(cfg)


# ---- -i libvirtxml ------------------------------------------------------------------------

xml_chars = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"],
                          exclude_characters="\ufffe\uffff")
attr = st.one_of(st.text(xml_chars, max_size=12), st.sampled_from(
    ["", "0", "1", "-1", "2", "512", "-512", "localhost", "nbd", "network", "file", "block",
     "disk", "cdrom", "KiB", "GiB", "bytes", "x", "99999999999999999999", "hvm", "efi", "bios",
     "unix", " 7 ", "1e3", "0x10", "٣"]))


def xml_attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))


@st.composite
def domain_xml(draw: st.DrawFn) -> bytes:
    """A libvirt domain with fuzzed values in the places the reader looks at, maybe mangled."""
    def a() -> str:
        return xml_attr(draw(attr))
    def nbd() -> str:  # mostly what p2v sends: the reader gets past its disk checks
        port = draw(st.one_of(st.integers(-10, 70000).map(str), attr))
        return (f'<disk type="network" device="disk"><driver name="qemu" type="raw"/>'
                f'<source protocol="nbd"><host name="localhost" port="{xml_attr(port)}"/>'
                f'</source><target dev="{a()}"/></disk>')
    disks = "".join(
        nbd() if draw(st.booleans()) else
        f'<disk type="{a()}" device="{a()}"><driver name="qemu" type="{a()}"/>'
        f'<source protocol="{a()}" file="{a()}" dev="{a()}"><host name="{a()}" port="{a()}" '
        f'transport="{a()}" socket="{a()}"/></source><target dev="{a()}"/></disk>'
        for _ in range(draw(st.integers(0, 3))))
    nics = "".join(f'<interface type="{a()}"><source network="{a()}" bridge="{a()}"/>'
                   f'<mac address="{a()}"/><model type="{a()}"/><target dev="{a()}"/>'
                   "</interface>" for _ in range(draw(st.integers(0, 2))))
    doc = (f'<domain type="{a()}"><name>{a()}</name><memory unit="{a()}">{a()}</memory>'
           f'<currentMemory unit="{a()}">{a()}</currentMemory><vcpu>{a()}</vcpu>'
           f'<cpu match="{a()}"><vendor>{a()}</vendor><model>{a()}</model>'
           f'<topology sockets="{a()}" cores="{a()}" threads="{a()}"/></cpu>'
           f'<clock offset="{a()}"/><os firmware="{a()}"><type arch="{a()}">{a()}</type>'
           f'<loader type="{a()}"/></os><features><{draw(st.sampled_from(["acpi", "apic"]))}/>'
           f'</features><devices>{disks}{nics}</devices></domain>')
    data = doc.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:  # mangle: cut, splice random bytes
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=20)) + data[cut + draw(st.integers(0, 40)):]
    return data


def read_libvirtxml(data: bytes) -> Any:
    """The Source read from `data`; when one is returned, its numbers make sense."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "guest.xml")
        with open(path, "wb") as f:
            f.write(data)
        src = outcome(lambda: LibvirtXMLInput().source(InputOptions(args=(path,))))
    if src is not None:
        assert src.vcpus >= 1 and src.memory > 0 and src.disks, src
        for disk in src.disks:
            port = disk.location.rpartition(":")[2] if disk.location.startswith("nbd://") else ""
            assert not port or 1 <= int(port) <= 65535, disk.location
    return src


@FUZZ
@given(st.one_of(domain_xml(), st.binary(max_size=200)))
def test_libvirtxml_input(data: bytes) -> None:
    read_libvirtxml(data)


@FUZZ
@given(kernel_cmdlines())
def test_physical_xml_reads_back(text: str) -> None:
    """Whatever p2v builds from a kernel command line, -i libvirtxml reads (or refuses cleanly)."""
    cfg = Config(guestname="p2v", disks=["sda"], cores=1, memory=1 << 30)
    if outcome(lambda: config.apply_cmdline(cfg, Cmdline.from_string(text))) is None:
        return
    xml = physical(cfg)
    if xml is not None:
        read_libvirtxml(xml)
