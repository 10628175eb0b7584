"""Linux guest conversion: the families table, from libguestfs distro names to converters.

Adding a distro of a known family is one row here; a new family is a `LinuxConverter` subclass
in its own module.  Names are libguestfs's ``inspect-get-distro`` values (plus the spellings newer
libguestfs versions use).
"""

from __future__ import annotations

from ....errors import V2VError
from ...types import Inspect
from .base import LinuxConverter
from .debian import DebianConverter
from .redhat import RedHatConverter
from .suse import SuseConverter

FAMILIES: dict[str, type[LinuxConverter]] = {
    "debian": DebianConverter,
    "ubuntu": DebianConverter,
    "linuxmint": DebianConverter,
    "kalilinux": DebianConverter,
    "kali": DebianConverter,
    "rhel": RedHatConverter,
    "centos": RedHatConverter,
    "rocky": RedHatConverter,
    "almalinux": RedHatConverter,
    "oraclelinux": RedHatConverter,
    "fedora": RedHatConverter,
    "scientificlinux": RedHatConverter,
    "redhat-based": RedHatConverter,
    "sles": SuseConverter,
    "opensuse": SuseConverter,
    "suse-based": SuseConverter,
}
# The package format each family's converter works through.
PACKAGE_FORMATS = {DebianConverter: "deb", RedHatConverter: "rpm", SuseConverter: "rpm"}


def linux_converter_for(inspect: Inspect) -> LinuxConverter:
    cls = FAMILIES.get(inspect.distro)
    if cls is None:
        raise V2VError(f"converting {inspect.product_name or 'this guest'} is not supported: "
                       f"the Linux distribution '{inspect.distro}' is not in a known family "
                       "(Debian, Red Hat or SUSE)")
    fmt = PACKAGE_FORMATS[cls]
    if inspect.package_format not in (fmt, "unknown", ""):
        raise V2VError(f"{inspect.product_name} uses {inspect.package_format} packages, but "
                       f"the {cls.family} family converter needs {fmt}")
    return cls()
