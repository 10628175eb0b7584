"""The input contract: an `Input` turns command-line arguments into a `Source`.

An input only describes the source (disks as local paths or NBD URIs, NICs, CPUs, memory); it
never writes to it.  Servers it needs to start (nbdkit …) are registered with process.py.
What an input can use is declared on its class, so the command line refuses what no input
uses instead of ignoring it: `accepts_conn` (-ic URI), `transports` (-it), `io_options`
(-io keys), `network_bandwidth` (it reads over a
network and applies --bandwidth/--bandwidth-file there itself; otherwise the limit applies to
the disk copy).
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
    transport: str | None = None     # -it (e.g. "ssh" for -i vmx)
    name: str | None = None          # -on (renames the guest; the input may use it as default)
    extra: dict[str, str] = field(default_factory=dict)
    bandwidth: int | None = None     # --bandwidth, bits per second (network inputs)
    bandwidth_file: str | None = None  # --bandwidth-file (rate re-read while running)
    # --allow-external-files: disk images may name backing files, data files and VMDK extents
    # outside their own directory (or json:/protocol backings).  Off: such images are refused.
    allow_external_files: bool = False
    password_file: str | None = None  # -ip FILE (-i libvirt with esx:// or vpx://)


class Input(ABC):
    name: str = ""
    description: str = ""
    accepts_conn = False        # uses -ic URI (e.g. a future -i libvirt); otherwise refused
    network_bandwidth = False   # applies --bandwidth to its own network reads
    transports: tuple[str, ...] = ()  # accepted -it values; otherwise -it is refused
    accepts_password = False    # uses -ip FILE; otherwise -ip is refused
    io_options: dict[str, str] = {}   # accepted -io KEY[=VALUE] keys → help (into `extra`)

    @abstractmethod
    def source(self, opts: InputOptions) -> Source:
        """Describe the source; raise V2VError with a one-line message on bad input."""
