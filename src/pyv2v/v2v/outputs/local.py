"""`-o local` (alias `disk`): disk files NAME-sda… plus a libvirt domain NAME.xml in -os DIR."""

from __future__ import annotations

import os

from ... import process
from ...errors import V2VError
from ..types import GuestCaps, Source, TargetMeta
from .base import Output, Staging, check_writable_dir, drive_name
from .domain_xml import build_domain


class LocalOutput(Output):
    name = "local"
    description = "local disk files and a libvirt XML file"

    def precheck(self) -> None:
        super().precheck()
        self.dir = check_writable_dir(self.opts.storage)

    def disk_paths(self, name: str, source: Source, caps: GuestCaps) -> list[str]:
        return [os.path.join(self.dir, f"{name}-{drive_name(d.index)}")
                for d in source.disks]

    def finalize(self, meta: TargetMeta, staging: Staging) -> list[str]:
        final = os.path.join(self.dir, f"{meta.name}.xml")
        xml = build_domain(meta)
        staging.write_text(final, xml)
        validate_domain_xml(staging.pending[-1][0])
        return [final]


def validate_domain_xml(path: str) -> None:
    """Check generated XML against libvirt's schema when virt-xml-validate is installed."""
    if process.which("virt-xml-validate") is None:
        return
    res = process.run(["virt-xml-validate", path, "domain"], check=False, timeout=60)
    if res.rc != 0:
        raise V2VError(f"generated libvirt XML does not validate: "
                       f"{(res.err or res.out).strip().splitlines()[-1:]}")
