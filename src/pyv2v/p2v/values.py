"""Values of p2v settings: the `Spec` of a field (key, kind, range, rule) and how text becomes
a checked value — booleans, sizes, numbers, enums, lists (PROTOCOL.md §6), control characters
refused, ranges (`Spec.minimum`/`maximum`) and rules (the guest name, pyv2v.names) applied.
config.py's field table is made of these Specs; its consumers (kernel command line, flags,
config files, the TUI rows) all parse through `parse_value` and check through `field_problem`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import V2VError

TRUE = {"", "1", "true", "t", "yes", "y", "on"}
FALSE = {"0", "false", "f", "no", "n", "off"}
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
# No setting may hold C0 controls or DEL (they would reach physical.xml, argv and logs), lone
# surrogates or the XML non-characters U+FFFE/U+FFFF (found by tests/unit/test_fuzz_parsers.py).
BAD_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# Ranges (Spec.minimum/maximum).  Memory: at least 256 MiB (no Linux or Windows the server
# converts boots in less, and a typo like "512" = 512 bytes must not reach the server), at most
# 64 TiB (46 physical address bits: what QEMU/KVM x86 guests can address; libvirt itself would
# take up to 2^53 KiB).  vCPUs: 1 to 4096 (KVM_MAX_VCPUS on x86 since Linux 5.15).  The RTC
# offset: the UTC-12..UTC+14 span hardware.read_rtc accepts.
MIN_MEMORY, MAX_MEMORY = 256 << 20, 64 << 40
MAX_VCPUS = 4096


@dataclass(frozen=True)
class Spec:
    key: str
    alias: str | None = None
    kind: str = "str"  # str | int | bool | list | size | enum
    flag: str | None = None
    metavar: str | None = None
    help: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False
    minimum: int | None = None  # int/size kinds: inclusive range
    maximum: int | None = None
    rule: Callable[[str], str | None] | None = None  # str kinds: None if fine, else the problem


def check_text(key: str, value: str) -> str:
    """`value`, or a one-line V2VError if it holds control characters."""
    if BAD_TEXT.search(value):
        raise V2VError(f"invalid {key}: control characters are not allowed in settings")
    return value


def field_problem(spec: Spec, value: Any) -> str | None:
    """What is wrong with `value` for the field `spec` (its range or rule), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and (
            (spec.minimum is not None and value < spec.minimum)
            or (spec.maximum is not None and value > spec.maximum)):
        show = format_size if spec.kind == "size" else str
        if spec.maximum is None:
            return f"must be at least {show(spec.minimum or 0)}"
        if spec.minimum is None:
            return f"must be at most {show(spec.maximum)}"
        return f"must be between {show(spec.minimum)} and {show(spec.maximum)}"
    if spec.rule is not None and isinstance(value, str):
        return spec.rule(value)
    return None


def check_field(spec: Spec, value: Any) -> Any:
    """`value`, or a one-line V2VError naming the key and the problem."""
    problem = field_problem(spec, value)
    if problem is not None:
        shown = format_size(value) if spec.kind == "size" else value
        raise V2VError(f"invalid {spec.key}={shown!r}: {problem}"
                       + (f" (set {spec.flag} or {spec.key}=…)" if spec.rule else ""))
    return value


def parse_bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise V2VError(f"invalid boolean {key}={value!r} (use 1/0, true/false, yes/no, on/off)")


def parse_size(key: str, value: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtTpP]?)(?:i?[bB])?\s*", value)
    if not m:
        raise V2VError(f"cannot parse {key}={value!r} (expected e.g. 1024M or 4G)")
    return int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]


def format_size(n: int) -> str:
    for unit in ("P", "T", "G", "M", "K"):
        if n and n % SIZE_UNITS[unit] == 0:
            return f"{n // SIZE_UNITS[unit]}{unit}"
    return str(n)


def parse_value(spec: Spec, value: str) -> Any:
    if not spec.secret:
        check_text(spec.key, value)
    if spec.kind == "int":
        try:
            number = int(value.strip())
        except ValueError:
            raise V2VError(f"cannot parse {spec.key}={value!r} (expected a number)") from None
        return check_field(spec, number)
    if spec.kind == "bool":
        return parse_bool(spec.key, value)
    if spec.kind == "size":
        return check_field(spec, parse_size(spec.key, value))
    if spec.kind == "list":
        return [v.strip() for v in value.split(",") if v.strip()]
    if spec.kind == "enum" and value not in spec.choices:
        raise V2VError(f"invalid value {spec.key}={value!r} (expected one of "
                       f"{', '.join(spec.choices)})")
    return check_field(spec, value)
