"""Windows guest conversion: the versions table, from inspection to the converter.

Like linux/: one converter class for the family (base.py), modules per concern (registry,
facts, virtio_win, drivers, hygiene, firstboot, tasks).  Windows releases older than NT 6.1
(Windows 7 / Server 2008 R2) are refused: virtio-win has no drivers for them any more.
"""

from __future__ import annotations

from ....errors import V2VError
from ...types import Inspect
from .base import WindowsConverter

# Lowest supported (major, minor): Windows 7 / Server 2008 R2.
MIN_VERSION = (6, 1)
FAMILIES: dict[str, type[WindowsConverter]] = {"windows": WindowsConverter}


def windows_converter_for(inspect: Inspect) -> WindowsConverter:
    cls = FAMILIES.get(inspect.distro or "windows", WindowsConverter)
    if (inspect.major, inspect.minor) < MIN_VERSION and inspect.major != 0:
        raise V2VError(
            f"converting {inspect.product_name or 'this Windows'} "
            f"({inspect.major}.{inspect.minor}) is not supported: the oldest "
            "supported Windows is 7 / Server 2008 R2 (6.1)"
        )
    return cls()
