"""`-o null`: convert, then throw the result away (a dry run that exercises the whole pipeline)."""

from __future__ import annotations

import json

from ..types import Source, TargetMeta
from .base import CopyTarget, Destination, Output, Target


class NullDestination(Destination):
    """qemu-img's null-co driver: the copy reads the whole overlay and writes nowhere."""

    def __init__(self) -> None:
        super().__init__("null", "raw")

    def copy_target(self, size: int) -> CopyTarget:
        spec = {"file": {"driver": "null-co", "size": size}}
        return CopyTarget("json:" + json.dumps(spec), "raw", create=False)

    def commit(self) -> None:
        return None

    def abort(self) -> None:
        return None


class NullOutput(Output):
    name = "null"
    description = "convert and discard the output"
    formats = ("raw", "qcow2")

    def setup(self, name: str, source: Source) -> Target:
        return Target(tuple(NullDestination() for d in source.disks))

    def finalize(self, meta: TargetMeta, target: Target) -> list[str]:
        return []
