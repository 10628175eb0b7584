"""THE stage order of a conversion, readable top to bottom.

input → overlay → inspect → check free space → convert → trim → output setup → copy → finalize.
Each stage reports to a Monitor; the source is never written (overlays); output files are staged
under temporary names and renamed only after everything succeeded.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from .. import log
from ..errors import V2VError
from . import inputs, outputs
from .appliance import Appliance
from .convert import converter_for
from .convert.guest import LibguestfsGuest
from .copy import CopyJob, copy_disks, measure_required
from .monitor import Monitor
from .network import NetworkMap
from .outputs.base import BUS_PREFIX, drive_name
from .overlay import Overlays
from .types import ConvertOptions, GuestCaps, Inspect, Source, TargetDisk, TargetMeta

# Only used to name output files before conversion decides the real capabilities.
GUESSED_CAPS = GuestCaps(block_bus="virtio-blk", net_bus="virtio-net", video="vga", machine="pc",
                         arch="x86_64", firmware="bios")


@dataclass
class Plan:
    input_mode: str
    input_opts: inputs.InputOptions
    output_mode: str
    output_opts: outputs.OutputOptions
    output_name: str | None = None
    root_choice: str = "ask"
    network: NetworkMap = field(default_factory=NetworkMap)
    block_bus: str = "virtio-blk"
    bandwidth: int | None = None


def run(plan: Plan, monitor: Monitor) -> TargetMeta:
    output = outputs.get(plan.output_mode, plan.output_opts)
    output.precheck()

    monitor.stage(f"Setting up the source: -i {plan.input_mode} {' '.join(plan.input_opts.args)}")
    source = inputs.get(plan.input_mode).source(plan.input_opts)
    name = plan.output_name or source.name
    check_guest_name(name)
    nics = plan.network.plan(source.nics)

    monitor.stage("Opening the source")
    overlays = Overlays(source.disks, notify=monitor.stage)
    try:
        app = Appliance(overlays.paths)
        try:
            monitor.stage("Inspecting the source")
            inspect = choose_root(app, plan.root_choice)
            app.mount(inspect)
            app.check_free_space()
            if output.writes_disks:
                check_output_space(output.disk_paths(name, source, GUESSED_CAPS),
                                   app.used_bytes())

            converter = converter_for(inspect)  # it reports "Converting … to run on KVM"
            caps = converter.convert(LibguestfsGuest(app.g), inspect,
                                     ConvertOptions(block_bus=plan.block_bus, nics=nics))
            monitor.stage("Mapping filesystem data to avoid copying unused and blank areas")
            app.trim()
        finally:
            monitor.stage("Closing the overlay")
            app.close()

        monitor.stage("Assigning disks to buses")
        meta = copy_out(plan, name, output, source, inspect, caps, nics, overlays, monitor)
    finally:
        overlays.close()
    monitor.stage("Finishing off")
    return meta


def check_guest_name(name: str) -> None:
    if not name or name.startswith(".") or not all(c.isalnum() or c in "-_.+" for c in name):
        raise V2VError(f"invalid guest name {name!r}: use letters, digits and - _ . + "
                       "(rename it with -on)")


def choose_root(app: Appliance, choice: str) -> Inspect:
    roots = app.roots()
    if not roots:
        raise V2VError("inspection could not detect the source guest (or physical machine): "
                       "no operating system was found on the source disks")
    if choice.startswith("/dev/"):
        if choice not in roots:
            raise V2VError(f"--root {choice}: not a root filesystem of an operating system "
                           f"(found: {', '.join(roots)})")
        root = choice
    elif choice == "first" or len(roots) == 1:
        root = roots[0]
    elif choice == "single":
        raise V2VError(f"--root single: the source has {len(roots)} operating systems")
    else:  # "ask" with several roots and no terminal to ask on
        raise V2VError(f"the source has {len(roots)} operating systems "
                       f"({', '.join(roots)}): choose one with --root")
    return app.inspect(root)


def copy_out(plan: Plan, name: str, output: outputs.Output, source: Source, inspect: Inspect,
             caps: GuestCaps, nics: tuple, overlays: Overlays, monitor: Monitor) -> TargetMeta:
    fmt = output.format
    prefix = BUS_PREFIX[caps.block_bus]
    staging = outputs.Staging()
    paths = output.disk_paths(name, source, caps)
    sizes = [d.size or 0 for d in source.disks]
    disks = tuple(TargetDisk(path=p, format=fmt, target_dev=drive_name(i, prefix), size=sizes[i])
                  for i, p in enumerate(paths))
    meta = TargetMeta(name=name, source=source, inspect=inspect, caps=caps,
                      disks=disks, nics=nics)
    try:
        if output.writes_disks:
            check_output_space(paths, sum(measure_required(ov) for ov in overlays.paths))
            jobs = [CopyJob(i, ov, "qcow2", staging.path(p), fmt,
                            plan.output_opts.allocation == "preallocated", plan.bandwidth)
                    for i, (ov, p) in enumerate(zip(overlays.paths, paths, strict=True))]
            for j in jobs:
                monitor.disk_start(j.index, len(jobs), sizes[j.index])
            copy_disks(jobs, monitor.progress)
        monitor.stage("Creating output metadata")
        output.finalize(meta, staging)
        staging.commit()
    except BaseException:
        staging.abort()
        raise
    output.after_commit(meta)
    return meta


def check_output_space(paths: list[str], need: int) -> None:
    """Refuse early (before converting) and again before copying if the output cannot fit."""
    if not paths:
        return
    outdir = os.path.dirname(paths[0])
    free = shutil.disk_usage(outdir).free
    log.debug(f"output needs about {need} bytes, {free} free in {outdir}")
    if need > free:
        raise V2VError(f"not enough free space in {outdir} for the output: "
                       f"{need / 1024**2:.0f} MiB needed, {free / 1024**2:.0f} MiB free")
