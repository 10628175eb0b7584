"""`-o json`: disk files plus NAME.json describing the guest (for tooling to consume)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from ... import __version__
from ..types import GuestCaps, Source, TargetMeta
from .base import Output, Staging, check_writable_dir, drive_name


class JsonOutput(Output):
    name = "json"
    description = "disk files and JSON metadata"

    def __init__(self, opts):  # type: ignore[no-untyped-def]
        super().__init__(opts)
        self.known_options = ("json-disks-pattern",)

    def precheck(self) -> None:
        super().precheck()
        self.dir = check_writable_dir(self.opts.storage)

    def disk_paths(self, name: str, source: Source, caps: GuestCaps) -> list[str]:
        pattern = self.opts.options.get("json-disks-pattern", "%{GuestName}-%{DiskDeviceName}")
        out = []
        for d in source.disks:
            name = (pattern.replace("%{GuestName}", name)
                    .replace("%{DiskNo}", str(d.index + 1))
                    .replace("%{DiskDeviceName}", drive_name(d.index)))
            out.append(os.path.join(self.dir, name))
        return out

    def finalize(self, meta: TargetMeta, staging: Staging) -> list[str]:
        doc = {
            "version": 1, "generator": f"pyv2v {__version__}", "name": meta.name,
            "memory": meta.source.memory, "vcpu": meta.source.vcpus,
            "cpu": asdict(meta.source.cpu), "firmware": meta.caps.firmware,
            "guestcaps": asdict(meta.caps),
            "inspect": asdict(meta.inspect) if meta.inspect else None,
            "disks": [asdict(d) for d in meta.disks],
            "nics": [asdict(n) for n in meta.nics],
            "removables": [asdict(r) for r in meta.source.removables],
        }
        final = os.path.join(self.dir, f"{meta.name}.json")
        staging.write_text(final, json.dumps(doc, indent=2) + "\n")
        return [final]
