"""Guest conversion: choose a converter from the inspection and make the guest boot on KVM.

`converter_for(inspect)` returns the converter object (Linux families, Windows) or raises a
V2VError naming the unsupported OS.  A converter has ``convert(guest, inspect, opts) -> GuestCaps``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ...errors import V2VError
from ..types import ConvertOptions, GuestCaps, Inspect
from .guest import Guest
from .linux import linux_converter_for
from .windows import windows_converter_for


class Converter(Protocol):
    def convert(self, guest: Guest, inspect: Inspect, opts: ConvertOptions) -> GuestCaps: ...


# Operating system type (libguestfs inspect-get-type) → the function choosing its converter.
OS_TYPES: dict[str, Callable[[Inspect], Converter]] = {
    "linux": linux_converter_for,
    "windows": windows_converter_for,
}


def converter_for(inspect: Inspect) -> Converter:
    choose = OS_TYPES.get(inspect.type)
    if choose is None:
        name = inspect.product_name or inspect.type
        raise V2VError(f"converting {name} is not supported: no converter for "
                       f"{inspect.type} guests")
    return choose(inspect)
