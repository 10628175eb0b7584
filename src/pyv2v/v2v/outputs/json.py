"""`-o json`: disk files plus NAME.json describing the guest (for tooling to consume)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from ... import __version__
from ...devnames import drive_letters
from ..types import SourceDisk, TargetMeta
from .base import FilesOutput, Target


class JsonOutput(FilesOutput):
    name = "json"
    description = "disk files and JSON metadata"
    known_options = ("json-disks-pattern",)

    def metadata_files(self, name: str) -> list[str]:
        return [f"{name}.json"]

    def disk_file_name(self, name: str, disk: SourceDisk) -> str:
        pattern = self.opts.options.get("json-disks-pattern", "%{GuestName}-%{DiskDeviceName}")
        return (pattern.replace("%{GuestName}", name)
                .replace("%{DiskNo}", str(disk.index + 1))
                .replace("%{DiskDeviceName}", "sd" + drive_letters(disk.index)))

    def finalize(self, meta: TargetMeta, target: Target) -> list[str]:
        assert target.files is not None
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
        final = os.path.join(target.dir, f"{meta.name}.json")
        target.files.write_text(final, json.dumps(doc, indent=2) + "\n")
        return [final]
