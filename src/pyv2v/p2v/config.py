"""The p2v configuration: ONE field table for kernel keys, CLI flags, config files and dumps.

Each `Config` field carries a `Spec` (canonical `p2v.*` kernel key, alias, kind, CLI flag, help)
in its dataclass metadata; everything else is generated from that table: parsing the kernel
command line (PROTOCOL.md §6: canonical beats alias, first occurrence wins, quoted values,
booleans empty/1/true/t/yes/y/on), argparse flags, `key=value` config files, and `dump()`.
Precedence, lowest first: built-in defaults < hardware defaults < config file < kernel command
line (`--cmdline` or /proc/cmdline) < CLI flags.  The password is never printed.  A Spec also
holds the field's range or rule (values.py parses and checks every value the same way);
`validate(cfg)` checks an assembled configuration (and its disks) before any connection.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from .. import ssh
from ..errors import V2VError
from ..names import guest_name_problem
from .hardware import Hardware, check_disk, round_up_pow2
from .kernel_cmdline import Cmdline
from .values import (  # noqa: F401 - config.parse_value, config.field_problem… stay the API
    MAX_MEMORY,
    MAX_VCPUS,
    MIN_MEMORY,
    Spec,
    check_field,
    check_text,
    field_problem,
    format_size,
    parse_size,
    parse_value,
)


def _bandwidth_problem(value: str) -> str | None:
    from ..rates import parse_rate

    return None if parse_rate(value) else "expected a rate in bits per second, e.g. 10M"


def _f(default: Any, key: str, **kw: Any) -> Any:
    meta = {"spec": Spec(key, **kw)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Config:
    server: str | None = _f(None, "p2v.remote.server", alias="p2v.server", flag="--server",
                            metavar="HOST", help="conversion server; given ⇒ non-interactive")
    port: int = _f(22, "p2v.remote.port", alias="p2v.port", kind="int", flag="--port",
                   help="ssh port of the conversion server", minimum=1, maximum=65535)
    username: str = _f("root", "p2v.auth.username", alias="p2v.username", flag="--username",
                       metavar="USER", help="ssh user on the conversion server")
    password: str | None = _f(None, "p2v.auth.password", alias="p2v.password", secret=True)
    identity: str | None = _f(None, "p2v.auth.identity.url", alias="p2v.identity",
                              flag="--identity", metavar="URL",
                              help="private key (file:// or https://); overrides password")
    sudo: bool = _f(False, "p2v.auth.sudo", alias="p2v.sudo", kind="bool", flag="--sudo",
                    help="run virt-v2v with sudo -n on the server")
    hostkey: str | None = _f(None, "p2v.hostkey", flag="--hostkey", metavar="SHA256:FP",
                             help="pin the server's host key fingerprint")
    known_hosts: str | None = _f(None, "p2v.known_hosts", flag="--known-hosts", metavar="FILE",
                                 help="our known_hosts file (default ~/.local/state/pyv2v/…)")
    guestname: str | None = _f(None, "p2v.guestname", alias="p2v.name", flag="--name",
                               help="guest name (default: short hostname)",
                               rule=guest_name_problem)
    phys_topo: bool = _f(False, "p2v.vcpu.phys_topo", kind="bool", flag="--phys-topo",
                         help="copy the physical sockets/cores/threads")
    cores: int = _f(0, "p2v.vcpu.cores", kind="int", flag="--cores", metavar="N",
                    help="vCPUs (default: online CPUs)", minimum=1, maximum=MAX_VCPUS)
    memory: int = _f(0, "p2v.memory", kind="size", flag="--memory", metavar="SIZE",
                     help="guest RAM, e.g. 1024M or 4G (default: RAM rounded to a power of 2)",
                     minimum=MIN_MEMORY, maximum=MAX_MEMORY)
    cpu_vendor: str | None = _f(None, "p2v.cpu.vendor", flag="--cpu-vendor", metavar="VENDOR")
    cpu_model: str | None = _f(None, "p2v.cpu.model", flag="--cpu-model", metavar="MODEL")
    acpi: bool = _f(False, "p2v.cpu.acpi", kind="bool", flag="--acpi")
    apic: bool = _f(False, "p2v.cpu.apic", kind="bool", flag="--apic")
    pae: bool = _f(False, "p2v.cpu.pae", kind="bool", flag="--pae")
    rtc_basis: str = _f("unknown", "p2v.rtc.basis", kind="enum", flag="--rtc-basis",
                        choices=("unknown", "utc", "localtime"))
    rtc_offset: int = _f(0, "p2v.rtc.offset", kind="int", flag="--rtc-offset", metavar="SECS",
                         minimum=-12 * 3600, maximum=14 * 3600)
    disks: list[str] = _f([], "p2v.disks", kind="list", flag="--disks", metavar="sda,sdb",
                          help="disks to convert (names or absolute paths)")
    removable: list[str] = _f([], "p2v.removable", kind="list", flag="--removable",
                              metavar="sr0,…")
    interfaces: list[str] = _f([], "p2v.interfaces", kind="list", flag="--interfaces",
                               metavar="eth0,…")
    network_map: list[str] = _f([], "p2v.network_map", alias="p2v.network", kind="list",
                                flag="--network", metavar="IF:NET,…,DEFAULT")
    output_type: str = _f("local", "p2v.output.type", alias="p2v.o", flag="-o",
                          metavar="TYPE", help="virt-v2v -o")
    output_allocation: str = _f("none", "p2v.output.allocation", alias="p2v.oa", kind="enum",
                                flag="--oa", choices=("none", "sparse", "preallocated"))
    output_connection: str | None = _f(None, "p2v.output.connection", alias="p2v.oc",
                                       flag="--oc", metavar="URI")
    output_format: str | None = _f(None, "p2v.output.format", alias="p2v.of", flag="--of",
                                   metavar="FORMAT")
    output_storage: str | None = _f("/var/tmp", "p2v.output.storage", alias="p2v.os",
                                    flag="--os", metavar="STORAGE")
    output_misc: list[str] = _f([], "p2v.output.misc", alias="p2v.oo", kind="list",
                                flag="--oo", metavar="K=V,…", help="one -oo per item")
    pre: str | None = _f(None, "p2v.pre", flag="--pre", metavar="CMD",
                         help="command run before the conversion")
    post: str | None = _f(None, "p2v.post", flag="--post", metavar="CMD",
                          help="command run after success (kernel mode as root: poweroff)")
    fail: str | None = _f(None, "p2v.fail", flag="--fail", metavar="CMD",
                          help="command run after a failure")
    skip_test_connection: bool = _f(False, "p2v.skip_test_connection", kind="bool",
                                    flag="--skip-test-connection")
    nbd_server: str = _f("nbdkit", "p2v.nbd_server", kind="enum", flag="--nbd-server",
                         choices=("nbdkit", "qemu-nbd"),
                         help="local NBD server exporting the disks (default nbdkit)")
    bandwidth: str | None = _f(None, "p2v.bandwidth", flag="--bandwidth", metavar="BPS",
                               help="virt-v2v --bandwidth: cap the disk pull, bits/s "
                               "(10M = 10 Mibit/s)", rule=_bandwidth_problem)
    compress: bool = _f(False, "p2v.compress", kind="bool", flag="--compress",
                        help="compress the disk data in ssh (-C): pays on slow links "
                        "(measured: 10 Mbit/s yes, 100 Mbit/s no)")
    dump_config_and_exit: bool = _f(False, "p2v.dump_config_and_exit", kind="bool",
                                    flag="--dump-config", help="print the configuration, exit")

    def ssh_target(self, identity: str | None = None) -> ssh.Target:
        """Where and as whom to connect (the one Config → ssh mapping); `identity` is the
        local private key file (fetched from `self.identity` by the session), if any."""
        return ssh.Target(host=self.server or "", port=self.port, user=self.username,
                          identity=identity, known_hosts=self.known_hosts or "",
                          hostkey=self.hostkey)


def specs() -> list[tuple[str, Spec]]:
    """(attribute, spec) for every field, in table order."""
    return [(f.name, f.metadata["spec"]) for f in dataclasses.fields(Config)]


def check_values(cfg: Config) -> None:
    """Every non-secret text setting of `cfg` (wherever it came from) passes check_text."""
    for attr, spec in specs():
        value = getattr(cfg, attr)
        if not spec.secret and isinstance(value, (str, list)):
            for item in value if isinstance(value, list) else [value]:
                check_text(spec.key, str(item))


def validate(cfg: Config) -> None:
    """Every field of the assembled `cfg` within its range and rule, and every disk usable
    (hardware.check_disk), before any connection: kernel mode checks it up front, and every
    conversion run again."""
    check_values(cfg)
    for attr, spec in specs():
        value = getattr(cfg, attr)
        if attr == "guestname" and not value:
            raise V2VError(f"invalid {spec.key}: no guest name (set {spec.flag} or "
                           f"{spec.key}=…)")
        check_field(spec, value)
    for disk in cfg.disks:
        check_disk(disk)


def apply_hardware(cfg: Config, hw: Hardware) -> None:
    """Defaults taken from the physical machine (reference set_config_defaults)."""
    name = hw.hostname.split(".")[0]
    if name and name not in ("localhost", "(none)") and guest_name_problem(name) is None:
        cfg.guestname = name
    cfg.cores = min(max(1, hw.online_cpus), MAX_VCPUS)
    cfg.memory = min(max(round_up_pow2(hw.memory), MIN_MEMORY), MAX_MEMORY) if hw.memory \
        else 1 << 30
    cfg.cpu_vendor = hw.cpu.vendor
    cfg.cpu_model = hw.cpu.model
    cfg.acpi, cfg.apic, cfg.pae = hw.cpu.acpi, hw.cpu.apic, hw.cpu.pae
    cfg.rtc_basis, cfg.rtc_offset = hw.rtc_basis, hw.rtc_offset
    cfg.disks, cfg.removable = list(hw.disks), list(hw.removable)
    cfg.interfaces = list(hw.interfaces)


def apply_cmdline(cfg: Config, cmdline: Cmdline) -> list[str]:
    """Set every field present on `cmdline`; returns the p2v.* keys nobody knows."""
    known: set[str] = set()
    for attr, spec in specs():
        known.update(k for k in (spec.key, spec.alias) if k)
        found = cmdline.lookup(spec.key, spec.alias)
        if found is not None:
            setattr(cfg, attr, parse_value(spec, found[1]))
    return [k for k in cmdline.keys() if k.startswith("p2v.") and k not in known]


def read_config_file(path: str) -> Cmdline:
    """A config file: `key=value` lines (p2v. prefix optional), # comments, quoted values."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise V2VError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise V2VError(f"config file {path} is not UTF-8 text (byte {e.start})") from None
    pairs: list[tuple[str, str]] = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise V2VError(f"{path}:{n}: expected key=value")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        pairs.append((key if key.startswith("p2v.") else "p2v." + key, value))
    return Cmdline(pairs, "file")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one CLI flag per field that has one (defaults are None = not given)."""
    group = parser.add_argument_group("conversion settings (same as the p2v.* kernel keys)")
    for attr, spec in specs():
        if spec.flag is None:
            continue
        text = spec.help or f"kernel key {spec.key}"
        if spec.help:
            text += f" [{spec.key}]"
        kw: dict[str, Any] = {"dest": attr, "default": None, "help": text}
        if spec.kind == "bool":
            group.add_argument(spec.flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        if spec.kind == "list":
            kw["action"] = "append"
        elif spec.kind == "enum":
            kw["choices"] = spec.choices
        group.add_argument(spec.flag, metavar=spec.metavar or attr.upper(), **kw)


def apply_flags(cfg: Config, ns: argparse.Namespace) -> None:
    for attr, spec in specs():
        value = getattr(ns, attr, None)
        if value is None or spec.flag is None:
            continue
        if spec.kind == "list":
            value = [item for v in value for item in parse_value(spec, v)]
        elif spec.kind not in ("bool", "enum"):
            value = parse_value(spec, str(value))
        setattr(cfg, attr, value)


def _show(spec: Spec, value: Any) -> str | None:
    if value is None:
        return None
    if spec.secret:
        return "<hidden>"
    if spec.kind == "bool":
        return "true" if value else "false"
    if spec.kind == "list":
        return ",".join(value)
    if spec.kind == "size":
        return format_size(value)
    text = str(value)
    return f'"{text}"' if not text or re.search(r"\s", text) else text


def dump(cfg: Config) -> str:
    """Canonical `key=value` lines (unset fields as comments); readable by read_config_file."""
    lines = []
    for attr, spec in specs():
        shown = _show(spec, getattr(cfg, attr))
        lines.append(f"#{spec.key}=" if shown is None else f"{spec.key}={shown}")
    return "\n".join(lines) + "\n"


def command_argv(cmd: str) -> list[str]:
    """A p2v.pre/post/fail command as argv (no shell; write `sh -c '…'` to get one)."""
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        raise V2VError(f"cannot parse command {cmd!r}: {e}") from None
    return argv
