"""The `-o` modes: an explicit registry of output name → Output class."""

from __future__ import annotations

from ...errors import V2VError
from .base import Output, OutputOptions, Staging
from .json import JsonOutput
from .kubevirt import KubevirtOutput
from .libvirt import LibvirtOutput
from .local import LocalOutput
from .null import NullOutput
from .qemu import QemuOutput

OUTPUTS: dict[str, type[Output]] = {
    "local": LocalOutput,
    "disk": LocalOutput,  # the name newer virt-v2v releases use
    "null": NullOutput,
    "qemu": QemuOutput,
    "json": JsonOutput,
    "libvirt": LibvirtOutput,
    "kubevirt": KubevirtOutput,
}


def get(name: str, opts: OutputOptions) -> Output:
    try:
        return OUTPUTS[name](opts)
    except KeyError:
        raise V2VError(f"unknown output mode -o {name} (supported: "
                       f"{', '.join(sorted(OUTPUTS))})") from None


__all__ = ["OUTPUTS", "Output", "OutputOptions", "Staging", "get"]
