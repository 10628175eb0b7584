"""`v2v`: the virt-v2v compatible command line (also installable as `virt-v2v` for virt-p2v).

Parses virt-v2v's options, answers `--version` / `--machine-readable` in the formats virt-p2v
expects, refuses upstream options we do not support (never silently ignores them), builds a
pipeline Plan, and is the only place (with p2v's cli) that turns V2VError into a one-line error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from .. import __version__, log, process
from ..errors import Cancelled, V2VError
from . import inputs, outputs, pipeline
from .copy import parse_rate
from .monitor import choose
from .network import NetworkMap
from .printsource import print_source

REFERENCE_VERSION = "2.2.0"
UNSUPPORTED = {
    "--in-place": 0, "-io": 1, "-ip": 1, "-op": 1, "-it": 1, "--key": 1,
    "--bandwidth-file": 1, "--vddk-libdir": 1, "--vddk-thumbprint": 1, "--password-file": 1,
    "--vmtype": 1, "--no-copy": 0, "--debug-overlays": 0, "--print-estimate": 0,
}

EPILOG = """\
examples:
  v2v -i disk guest.img -o local -os /var/tmp
  v2v -i disk guest.qcow2 -o qemu -os /var/tmp -oo qemu-boot
  v2v -i libvirtxml physical.xml --root first -o local -of qcow2 -os /var/lib/libvirt/images
  v2v -i disk guest.img --print-source
  v2v --machine-readable        (feature tokens, as virt-p2v asks for them)

Use as virt-p2v's conversion server: put `virt-v2v` on the server's PATH pointing at this
program (`ln -s $(command -v v2v) /usr/local/bin/virt-v2v`).
"""

FEATURES = ["virt-v2v", "pyv2v", "libguestfs-rewrite", "colours-option", "mac-option",
            "input:disk", "input:libvirtxml",
            *[f"output:{o}" for o in sorted(outputs.OUTPUTS)], "convert:linux"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise V2VError(message + " (see v2v --help)")


def build_parser() -> Parser:
    p = Parser(prog="v2v", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Convert a guest or physical machine to run on KVM "
                           "(virt-v2v compatible).", epilog=EPILOG)
    a = p.add_argument
    a("args", nargs="*", metavar="DISK|XML", help="input: disk images, or one XML file")
    a("-i", dest="input", default="libvirt", help="input mode: " + ", ".join(inputs.INPUTS))
    a("-ic", dest="input_conn", help="input connection URI")
    a("-if", dest="input_format", help="input disk format (-i disk)")
    a("-o", dest="output", default="libvirt", help="output mode: " + ", ".join(outputs.OUTPUTS))
    a("-oa", dest="allocation", choices=["sparse", "preallocated"], default="sparse")
    a("-oc", dest="output_conn", help="output connection URI")
    a("-of", dest="output_format", choices=["raw", "qcow2"], help="output disk format")
    a("-on", dest="output_name", help="rename the guest")
    a("-os", dest="output_storage", help="output storage (a directory for -o local/qemu/json)")
    a("-oo", dest="output_options", action="append", default=[], metavar="OPTION[=VALUE]")
    a("-b", "--bridge", action="append", default=[], metavar="IN:OUT")
    a("-n", "--network", action="append", default=[], metavar="IN:OUT")
    a("--mac", action="append", default=[], metavar="MAC:network|bridge:OUT")
    a("--root", default="ask", help="ask | single | first | /dev/… (multi-boot sources)")
    a("--block-driver", choices=["virtio-blk", "virtio-scsi"], default="virtio-blk")
    a("--bandwidth", metavar="BPS", help="limit the disk copy rate (bytes/s; k/M/G suffixes)")
    a("--print-source", action="store_true", help="print the source and exit")
    a("--machine-readable", nargs="?", const="stdout", metavar="FORMAT")
    a("--qemu-boot", action="store_true", help="same as -oo qemu-boot")
    a("-q", "--quiet", action="store_true")
    a("-v", "--verbose", action="store_true")
    a("-x", dest="trace", action="store_true", help="trace libguestfs calls (implies -v)")
    a("--colours", "--colors", "--colour", "--color", dest="colours", action="store_true")
    a("-V", "--version", action="store_true")
    return p


def refuse_unsupported(argv: list[str]) -> None:
    for arg in argv:
        opt = arg.split("=", 1)[0]
        if opt in UNSUPPORTED:
            raise V2VError(f"option {opt} is not supported by pyv2v yet")


def make_plan(ns: argparse.Namespace) -> pipeline.Plan:
    oo: dict[str, str] = {}
    for item in ns.output_options + (["qemu-boot"] if ns.qemu_boot else []):
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
    return pipeline.Plan(
        input_mode=ns.input,
        input_opts=inputs.InputOptions(args=tuple(ns.args), input_format=ns.input_format,
                                       input_conn=ns.input_conn, name=None),
        output_mode=ns.output,
        output_opts=outputs.OutputOptions(storage=ns.output_storage, conn=ns.output_conn,
                                          format=ns.output_format, allocation=ns.allocation,
                                          options=oo),
        output_name=ns.output_name, root_choice=ns.root, network=net,
        block_bus=ns.block_driver,
        bandwidth=parse_rate(ns.bandwidth) if ns.bandwidth else None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    log.configure(prog=os.path.basename(sys.argv[0]) or "v2v")
    try:
        refuse_unsupported(argv)
        ns = build_parser().parse_args(argv)
        log.configure(verbose=ns.verbose or ns.trace, quiet=ns.quiet, colours=ns.colours,
                      json_mode=ns.machine_readable is not None and bool(ns.args))
        if ns.version:
            print(f"virt-v2v {REFERENCE_VERSION} (pyv2v {__version__})")
            return 0
        if ns.machine_readable is not None and not ns.args:
            print("\n".join(FEATURES))
            return 0
        plan = make_plan(ns)
        if ns.print_source:
            src = inputs.get(plan.input_mode).source(plan.input_opts)
            print_source(src, ns.block_driver)
            return 0
        if ns.output not in outputs.OUTPUTS:
            outputs.get(ns.output, plan.output_opts)
        process.install_cancel_handlers()
        monitor = choose(ns.machine_readable is not None, ns.quiet)
        try:
            pipeline.run(plan, monitor)
        finally:
            monitor.close()
        return 0
    except (KeyboardInterrupt, V2VError) as e:
        process.cleanup_all()
        sig = process.cancelled()
        if sig or isinstance(e, KeyboardInterrupt | Cancelled):
            log.error(f"cancelled by {sig or 'SIGINT'}: conversion stopped, nothing was written")
            return Cancelled.exit_code
        log.error(str(e))
        return e.exit_code if isinstance(e, V2VError) else 1
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        process.cleanup_all()
        if process.cancelled():
            log.error(f"cancelled by {process.cancelled()}: conversion stopped, "
                      "nothing was written")
            return Cancelled.exit_code
        log.internal_error(e)
        return 1
    finally:
        process.cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
