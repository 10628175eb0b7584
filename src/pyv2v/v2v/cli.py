"""`v2v`: the virt-v2v compatible command line (also installable as `virt-v2v` for virt-p2v).

Parses virt-v2v's options (their table: options.py), answers `--version` /
`--machine-readable` in the formats virt-p2v expects, refuses upstream options we do not support
(never silently ignores them: -ic/-oc only where the chosen input/output class declares
`accepts_conn`), builds a pipeline Plan, and is
the only place (with p2v's cli) that turns exceptions into a one-line error and an exit status
(the table is errors.py's, shared with p2v).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .. import __version__, log, process
from ..errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    Cancelled,
    UsageError,
    V2VError,
    exit_code_for_signal,
)
from . import inputs, luks, outputs, pipeline, verifyboot
from .monitor import choose
from .network import NetworkMap
from .options import (
    FEATURES,
    REFERENCE_VERSION,
    VERIFY_BOOT_ENV,
    build_parser,
    parse_bandwidth,
    refuse_unsupported,
)
from .printsource import print_source


def check_conn(flag: str, uri: str | None, mode: str,
               classes: dict[str, type[inputs.Input]] | dict[str, type[outputs.Output]]) -> None:
    """Refuse -ic/-oc unless the chosen mode's class declares `accepts_conn`."""
    if uri is None or classes[mode].accepts_conn:
        return
    users = sorted(n for n, c in classes.items() if c.accepts_conn)
    which = f"only {', '.join(users)} {'do' if len(users) > 1 else 'does'}" if users else \
        "no mode of pyv2v does yet"
    raise UsageError(f"{flag} {uri}: {flag[:2]} {mode} does not use a connection URI ({which})")


def check_input_options(ns: argparse.Namespace) -> dict[str, str]:
    """-it and -io: refused unless the chosen input declares them (never silently ignored)."""
    cls = inputs.INPUTS[ns.input]
    if ns.input_transport == "vddk":
        raise UsageError("-it vddk: VMware's VDDK library is proprietary and not available to "
                         "pyv2v (use -i vmx -it ssh, or an OVA export)")
    if ns.input_transport is not None and ns.input_transport not in cls.transports:
        raise UsageError(f"-it {ns.input_transport}: -i {ns.input} supports "
                         + (f"only -it {', '.join(cls.transports)}" if cls.transports
                            else "no input transport"))
    if ns.input_password is not None and not cls.accepts_password:
        raise UsageError(f"-ip: -i {ns.input} does not use a password file (only -i libvirt "
                         "with -ic esx://… or vpx://… does)")
    extra: dict[str, str] = {}
    for item in ns.input_options:
        k, _, v = item.partition("=")
        if k not in cls.io_options:
            known = ", ".join(sorted(cls.io_options)) or "none"
            raise UsageError(f"-io {item}: not an input option of -i {ns.input} (known: {known})")
        extra[k] = v
    return extra


def make_plan(ns: argparse.Namespace) -> pipeline.Plan:
    oo: dict[str, str] = {}
    for item in (ns.output_options + (["qemu-boot"] if ns.qemu_boot else [])
                 + (["compressed"] if ns.compressed else [])):
        k, _, v = item.partition("=")
        oo[k] = v
    net = NetworkMap()
    for rule in ns.network:
        net.add("network", rule)
    for rule in ns.bridge:
        net.add("bridge", rule)
    for rule in ns.mac:
        net.add_mac(rule)
    if ns.input not in inputs.INPUTS:
        inputs.get(ns.input)  # raises the one-line error naming the supported modes
    check_conn("-ic", ns.input_conn, ns.input, inputs.INPUTS)
    extra = check_input_options(ns)
    if ns.output in outputs.OUTPUTS:
        check_conn("-oc", ns.output_conn, ns.output, outputs.OUTPUTS)
    bps = parse_bandwidth(ns.bandwidth) if ns.bandwidth is not None else None
    rate_file = os.path.abspath(ns.bandwidth_file) if ns.bandwidth_file else None
    network = inputs.INPUTS[ns.input].network_bandwidth
    if rate_file and not network:
        raise UsageError(f"--bandwidth-file: -i {ns.input} reads local files; a changing limit "
                         "applies only to network inputs (use --bandwidth)")
    return pipeline.Plan(
        input_mode=ns.input,
        input_opts=inputs.InputOptions(args=tuple(ns.args), input_format=ns.input_format,
                                       input_conn=ns.input_conn, name=None,
                                       transport=ns.input_transport, extra=extra,
                                       bandwidth=bps if network else None,
                                       bandwidth_file=rate_file,
                                       allow_external_files=ns.allow_external_files,
                                       password_file=ns.input_password),
        output_mode=ns.output,
        output_opts=outputs.OutputOptions(storage=ns.output_storage, conn=ns.output_conn,
                                          format=ns.output_format, allocation=ns.allocation,
                                          options=oo, overwrite=ns.overwrite),
        output_name=ns.output_name, root_choice=ns.root, network=net,
        block_bus=ns.block_driver, keys=luks.keys_from_args(ns.key, ns.keys_from_stdin),
        # Plan.bandwidth is the copy's limit in bytes/s: local inputs only (see options.EPILOG).
        bandwidth=max(1, bps // 8) if bps and not network else None)


def parse(argv: list[str]) -> argparse.Namespace:
    """v2v's command line → options (upstream options we lack refused): also v2v-fleet's jobs."""
    refuse_unsupported(argv)
    return build_parser().parse_args(argv)


def run(argv: list[str]) -> int:
    """Parse and run; raises on error (main() turns that into a message and an exit status)."""
    ns = parse(argv)
    ns.verify_boot = ns.verify_boot or os.environ.get(VERIFY_BOOT_ENV, "") in ("1", "yes", "true")
    log.configure(verbose=ns.verbose or ns.trace, quiet=ns.quiet, colours=ns.colours,
                  trace=ns.trace, json_mode=ns.machine_readable is not None and bool(ns.args))
    if ns.version:
        print(f"virt-v2v {REFERENCE_VERSION} (pyv2v {__version__})")
        return EXIT_OK
    if ns.machine_readable is not None and not ns.args:
        print("\n".join(FEATURES))
        return EXIT_OK
    plan = make_plan(ns)
    if ns.print_source:
        src = inputs.get(plan.input_mode).source(plan.input_opts)
        print_source(src, ns.block_driver)
        return EXIT_OK
    if ns.output not in outputs.OUTPUTS:
        outputs.get(ns.output, plan.output_opts)
    plan.keys.read_stdin(sys.stdin)
    process.install_cancel_handlers()
    monitor = choose(ns.machine_readable is not None, ns.quiet)
    from ..fleet import p2vjob  # a p2v run on a fleet's server shows in `v2v-fleet status`

    with p2vjob.track(ns, argv, monitor) as fleet:
        try:
            meta = fleet.meta = pipeline.run(plan, fleet.monitor)
        finally:
            fleet.monitor.close()
        if ns.verify_boot:  # inside the job: a p2v job's report shows the verdict
            fleet.verifying()
            verdict = verifyboot.verify(meta.disks, meta.caps, [n.mac for n in meta.nics])
            fleet.verdict = verdict.line()
            verifyboot.report(verdict)
    return EXIT_OK


def _cancelled(e: BaseException | None) -> int:
    """128 + the signal that stopped the run (the cancel watcher's, else the exception's)."""
    sig = process.cancelled()
    code = exit_code_for_signal(sig) if sig else \
        e.exit_code if isinstance(e, Cancelled) else exit_code_for_signal("SIGINT")
    name = signal.Signals(code - EXIT_SIGNAL_BASE).name
    log.error(f"cancelled by {name}: conversion stopped, nothing was written")
    return code


def main(argv: list[str] | None = None) -> int:
    """The entry point: one line on stderr and an errors.py exit status for every failure."""
    argv = list(sys.argv[1:] if argv is None else argv)
    log.configure(prog=os.path.basename(sys.argv[0]) or "v2v")
    try:
        return run(argv)
    except (KeyboardInterrupt, Cancelled) as e:
        process.cleanup_all()
        return _cancelled(e)
    except V2VError as e:
        process.cleanup_all()
        if process.cancelled():  # a child killed by the cancel failed first: still a cancel
            return _cancelled(None)
        log.error(str(e))
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        process.cleanup_all()
        if process.cancelled():
            return _cancelled(None)
        log.internal_error(e)
        return EXIT_INTERNAL
    finally:
        process.cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
