"""A test-only output, `-o nbd-test -os URI[,URI…]`: each disk is written into an NBD export the
test started (one URI per source disk, ``nbd://…`` or ``nbd+unix:///?socket=…``).

It shows that a destination need not be a file: one module here plus one registry line
(`register()`, or `python nbd_output.py ARGS…` to run the real `v2v` CLI with it registered).
Commit flushes the export; abort zeroes it, so a failed run leaves no disk that looks finished.
"""

from __future__ import annotations

import sys

from pyv2v import process
from pyv2v.errors import V2VError
from pyv2v.v2v import outputs
from pyv2v.v2v.outputs.base import CopyTarget, Destination, Output, Target
from pyv2v.v2v.types import Source, TargetMeta


def export_size(uri: str) -> int:
    res = process.run(["nbdinfo", "--size", uri], check=False, timeout=30)
    if res.rc != 0:
        raise V2VError(f"-o nbd-test: cannot reach {uri}: "
                       f"{(res.err.strip().splitlines() or ['no answer'])[-1]}")
    return int(res.out.strip())


class NbdDestination(Destination):
    """An existing NBD export: qemu-img writes into it (-n); nothing to rename."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri, "raw")

    def copy_target(self, size: int) -> CopyTarget:
        return CopyTarget(self.location, "raw", create=False)

    def commit(self) -> None:
        process.run(["qemu-io", "-f", "raw", "-c", "flush", self.location], timeout=60)

    def abort(self) -> None:
        size = export_size(self.location)
        process.run(["qemu-io", "-f", "raw", "-c", f"write -z 0 {size}", self.location],
                    timeout=300)


class NbdTestOutput(Output):
    name = "nbd-test"
    description = "write each disk into an NBD export (tests only)"
    formats = ("raw",)

    def precheck(self) -> None:
        super().precheck()
        if not self.opts.storage:
            raise V2VError("-o nbd-test needs -os URI[,URI…] (one NBD export per disk)")

    def setup(self, name: str, source: Source) -> Target:
        uris = (self.opts.storage or "").split(",")
        if len(uris) != len(source.disks):
            raise V2VError(f"-o nbd-test: {len(uris)} export(s) for {len(source.disks)} disk(s)")
        for uri, disk in zip(uris, source.disks, strict=True):
            if disk.size and export_size(uri) < disk.size:
                raise V2VError(f"-o nbd-test: {uri} is smaller than source disk {disk.index}")
        return Target(tuple(NbdDestination(u) for u in uris))

    def finalize(self, meta: TargetMeta, target: Target) -> list[str]:
        return []


def register() -> None:
    """The one registry line."""
    outputs.OUTPUTS["nbd-test"] = NbdTestOutput


if __name__ == "__main__":
    from pyv2v.v2v import cli

    register()
    sys.exit(cli.main(sys.argv[1:]))
