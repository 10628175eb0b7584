"""The input contract: an `Input` turns command-line arguments into a `Source`.

An input only describes the source (disks as local paths or NBD URIs, NICs, CPUs, memory); it
never writes to it.  Servers it needs to start (nbdkit …) are registered with process.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..types import Source


@dataclass(frozen=True)
class InputOptions:
    args: tuple[str, ...]           # positional arguments (disk paths, an XML file, a guest name)
    input_format: str | None = None  # -if
    input_conn: str | None = None    # -ic
    name: str | None = None          # -on (renames the guest; the input may use it as default)
    extra: dict[str, str] = field(default_factory=dict)


class Input(ABC):
    name: str = ""
    description: str = ""

    @abstractmethod
    def source(self, opts: InputOptions) -> Source:
        """Describe the source; raise V2VError with a one-line message on bad input."""
