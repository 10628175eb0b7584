"""The `-i` modes: an explicit registry of input name → Input class."""

from __future__ import annotations

from ...errors import V2VError
from .base import Input, InputOptions
from .disk import DiskInput
from .libvirt import LibvirtInput
from .libvirtxml import LibvirtXMLInput
from .ova import OvaInput
from .vmx import VmxInput

INPUTS: dict[str, type[Input]] = {
    "disk": DiskInput,
    "libvirt": LibvirtInput,
    "libvirtxml": LibvirtXMLInput,
    "ova": OvaInput,
    "vmx": VmxInput,
}


def get(name: str) -> Input:
    try:
        return INPUTS[name]()
    except KeyError:
        raise V2VError(f"unknown input mode -i {name} (supported: "
                       f"{', '.join(sorted(INPUTS))})") from None


__all__ = ["INPUTS", "Input", "InputOptions", "get"]
