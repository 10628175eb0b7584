"""`-o null`: convert, then throw the result away (a dry run that exercises the whole pipeline)."""

from __future__ import annotations

from ..types import GuestCaps, Source, TargetMeta
from .base import Output, Staging


class NullOutput(Output):
    name = "null"
    description = "convert and discard the output"
    writes_disks = False

    def disk_paths(self, name: str, source: Source, caps: GuestCaps) -> list[str]:
        return []

    def finalize(self, meta: TargetMeta, staging: Staging) -> list[str]:
        return []
