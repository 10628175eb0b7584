"""`-o local` (alias `disk`): disk files NAME-sda… plus a libvirt domain NAME.xml in -os DIR."""

from __future__ import annotations

import os

from ... import process
from ...errors import V2VError
from ..types import TargetMeta
from .base import FilesOutput, Target
from .domain_xml import build_domain


class LocalOutput(FilesOutput):
    name = "local"
    description = "local disk files and a libvirt XML file"

    def metadata_files(self, name: str) -> list[str]:
        return [f"{name}.xml"]

    def finalize(self, meta: TargetMeta, target: Target) -> list[str]:
        assert target.files is not None
        final = os.path.join(target.dir, f"{meta.name}.xml")
        validate_domain_xml(target.files.write_text(final, build_domain(meta)))
        return [final]


def validate_domain_xml(path: str) -> None:
    """Check generated XML against libvirt's schema when virt-xml-validate is installed."""
    if process.which("virt-xml-validate") is None:
        return
    res = process.run(["virt-xml-validate", path, "domain"], check=False, timeout=60)
    if res.rc != 0:
        raise V2VError(f"generated libvirt XML does not validate: "
                       f"{(res.err or res.out).strip().splitlines()[-1:]}")
