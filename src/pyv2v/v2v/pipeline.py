"""THE stage order of a conversion, readable top to bottom.

input → output setup → overlay → inspect → check free space → convert → trim → assign buses →
copy → metadata → commit.  One record per disk (`types.Disk`: source → overlay → destination →
target) flows through the stages.  Each stage reports to a Monitor; the source is never written
(overlays); the output's `Target` is committed only after everything succeeded and aborted on
any error, so a failed run leaves nothing that looks finished.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .. import log
from ..errors import InternalError, V2VError
from ..names import RULE, guest_name_problem
from . import inputs, luks, outputs
from .appliance import Appliance
from .convert import converter_for
from .convert.guest import LibguestfsGuest
from .copy import CopyOptions, copy_disks, measure_required
from .monitor import Monitor
from .network import NetworkMap
from .overlay import Overlays
from .ratelimit import RateLimit
from .types import ConvertOptions, Disk, GuestCaps, Inspect, TargetDisk, TargetMeta, TargetNicPlan


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
    keys: luks.Keys = field(default_factory=luks.Keys)


def run(plan: Plan, monitor: Monitor) -> TargetMeta:
    output = outputs.get(plan.output_mode, plan.output_opts)
    output.precheck()

    monitor.stage(f"Setting up the source: -i {plan.input_mode} {' '.join(plan.input_opts.args)}")
    source = inputs.get(plan.input_mode).source(plan.input_opts)
    name = plan.output_name or source.name
    check_guest_name(name)
    nics = plan.network.plan(source.nics)

    monitor.stage(f"Setting up the destination: -o {plan.output_mode}"
                  + (f" -os {plan.output_opts.storage}" if plan.output_opts.storage else ""))
    target = output.setup(name, source)  # refuses an existing guest before any work
    try:
        monitor.stage("Opening the source")
        overlays = Overlays(source.disks, notify=monitor.stage,
                            rate=RateLimit.of(plan.input_opts.bandwidth,
                                              plan.input_opts.bandwidth_file))
        try:
            disks = tuple(replace(d, destination=dest)
                          for d, dest in zip(overlays.disks, target.disks, strict=True))
            inspect, caps = convert_guest(plan, disks, nics, monitor)

            monitor.stage("Assigning disks to buses")
            disks = assign_targets(disks, caps)
            meta = TargetMeta(name=name, source=source, inspect=inspect, caps=caps,
                              disks=tuple(d.target for d in disks if d.target), nics=nics)

            check_output_space(disks, sum(measure_required(d.overlay) for d in disks))
            for d in disks:
                monitor.disk_start(d.index, len(disks), d.source.size or 0)
            copy_disks(disks, monitor.progress,
                       CopyOptions(plan.output_opts.allocation == "preallocated",
                                   plan.bandwidth, getattr(output, "compressed", False)))
        finally:
            overlays.close()

        monitor.stage("Creating output metadata")
        output.finalize(meta, target)
        monitor.committing(target)
        target.commit()
    except BaseException:
        target.abort()
        raise
    output.after_commit(meta, target)
    monitor.stage("Finishing off")
    return meta


def check_guest_name(name: str) -> None:
    """The shared rule (pyv2v.names), worded for the server."""
    if guest_name_problem(name) is not None:
        raise V2VError(f"invalid guest name {name!r}: {RULE} (rename it with -on)")


def convert_guest(plan: Plan, disks: Sequence[Disk], nics: tuple[TargetNicPlan, ...],
                  monitor: Monitor) -> tuple[Inspect, GuestCaps]:
    """Inspect, check space, convert and trim, with one appliance over the overlays."""
    app = Appliance([d.overlay for d in disks])
    try:
        monitor.stage("Inspecting the source")
        luks.unlock(app.g, plan.keys)
        inspect = choose_root(app, plan.root_choice)
        app.mount(inspect)
        app.check_free_space()
        check_output_space(disks, app.used_bytes())  # before the expensive work

        converter = converter_for(inspect)  # it reports "Converting … to run on KVM"
        caps = converter.convert(LibguestfsGuest(app.g), inspect,
                                 ConvertOptions(block_bus=plan.block_bus, nics=nics,
                                                disk_count=len(disks)))
        monitor.stage("Mapping filesystem data to avoid copying unused and blank areas")
        app.trim()
    finally:
        monitor.stage("Closing the overlay")
        app.close()
    return inspect, caps


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


def assign_targets(disks: Sequence[Disk], caps: GuestCaps) -> tuple[Disk, ...]:
    """Each disk's target: where it is written, and the device name the converter gave it."""
    if len(caps.target_devs) != len(disks):
        raise InternalError(f"the converter named {len(caps.target_devs)} target disks "
                            f"for {len(disks)} source disks")
    out = []
    for d, dev in zip(disks, caps.target_devs, strict=True):
        if d.destination is None:
            raise InternalError(f"disk {d.index} has no destination")
        out.append(replace(d, target=TargetDisk(path=d.destination.location,
                                                format=d.destination.format,
                                                target_dev=dev, size=d.source.size or 0)))
    return tuple(out)


def check_output_space(disks: Sequence[Disk], need: int) -> None:
    """Refuse early (before converting) and again before copying if file outputs cannot fit.

    Destinations that are not local files (NBD endpoints, volumes) have no directory to check.
    """
    dirs = {d.destination.space_dir() for d in disks if d.destination is not None}
    for outdir in sorted(x for x in dirs if x):
        free = shutil.disk_usage(outdir).free
        log.debug(f"output needs about {need} bytes, {free} free in {outdir}")
        if need > free:
            raise V2VError(f"not enough free space in {outdir} for the output: "
                           f"{need / 1024**2:.0f} MiB needed, {free / 1024**2:.0f} MiB free")
