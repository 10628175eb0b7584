"""`v2v`: the virt-v2v compatible command line (also installable as `virt-v2v` for virt-p2v).

Parses virt-v2v's options, answers `--version` / `--machine-readable` in the formats virt-p2v
expects, refuses upstream options we do not support (never silently ignores them: -ic/-oc only
where the chosen input/output class declares `accepts_conn`), builds a pipeline Plan, and is
the only place (with p2v's cli) that turns exceptions into a one-line error and an exit status
(the table is errors.py's, shared with p2v).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from typing import NoReturn

from .. import __version__, log, process
from ..errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    EXIT_STATUS_HELP,
    Cancelled,
    UsageError,
    V2VError,
    exit_code_for_signal,
)
from . import inputs, luks, outputs, pipeline, verifyboot
from .monitor import choose
from .network import NetworkMap
from .printsource import print_source

# --verify-boot from the environment: p2v cannot pass it (virt-p2v runs a fixed virt-v2v command
# line), so a conversion server sets this where p2v's ssh sessions get their environment.
VERIFY_BOOT_ENV = "PYV2V_VERIFY_BOOT"

REFERENCE_VERSION = "2.2.0"
UNSUPPORTED = {
    "--in-place": 0, "-op": 1,
    "--vddk-libdir": 1, "--vddk-thumbprint": 1, "--password-file": 1,
    "--vmtype": 1, "--no-copy": 0, "--debug-overlays": 0, "--print-estimate": 0,
}

EPILOG = """\
examples:
  v2v -i disk guest.img -o local -os /var/tmp
  v2v -i disk guest.qcow2 -o qemu -os /var/tmp -oo qemu-boot
  v2v -i libvirtxml physical.xml --root first -o local -of qcow2 -os /var/lib/libvirt/images
  v2v -i disk guest.img --print-source
  v2v -i ova guest.ova -o local -os /var/tmp           (tar, zip or unpacked directory)
  v2v -i vmx /vmware/guest/guest.vmx -o local -os /var/tmp
  v2v -i vmx -it ssh vmx+ssh://root@esxi/vmfs/volumes/ds1/guest/guest.vmx -o local -os /var/tmp
  v2v --machine-readable        (feature tokens, as virt-p2v asks for them)

Use as virt-p2v's conversion server: put `virt-v2v` on the server's PATH pointing at this
program (`ln -s $(command -v v2v) /usr/local/bin/virt-v2v`).

--bandwidth BPS limits how fast the input is read, in bits per second as in virt-v2v (k/M/G
suffixes multiply by 1024, as nbdkit reads them: 10M = 10 Mibit/s).  Network inputs (the NBD
disks of -i libvirtxml, i.e. a p2v client's disks) are read at that rate: a raw disk by v2v's
own pull, which still resumes and verifies, others through nbdkit's rate filter; and
--bandwidth-file FILE (same format, re-read while running; it may be created later) adjusts it.
-i disk reads local files: there the limit applies to the disk copy (BPS/8 bytes/s) and
--bandwidth-file is refused.  Local-file disks of -i libvirtxml are not limited.

Disk images are untrusted: an image whose backing file, qcow2 data file or VMDK extent lies
outside its own directory (symlinks resolved), or is a json:/protocol name, is refused unless
--allow-external-files is given.  -ic/-oc are refused by modes that use no connection URI
(-ic: {ic}; -oc: {oc}).

""".format(ic=", ".join(n for n, c in inputs.INPUTS.items() if c.accepts_conn) or "none yet",
           oc=", ".join(n for n, c in outputs.OUTPUTS.items() if c.accepts_conn) or "none yet"
           ) + EXIT_STATUS_HELP

# "pyv2v" and "nbd-unix-socket" (-i libvirtxml reads NBD unix-socket disks) are ours: a p2v
# seeing the latter forwards each disk to a private unix socket instead of a TCP port.
FEATURES = ["virt-v2v", "pyv2v", "libguestfs-rewrite", "colours-option", "mac-option",
            "mac-ip-option", "nbd-unix-socket", *[f"input:{i}" for i in sorted(inputs.INPUTS)],
            *[f"output:{o}" for o in sorted(outputs.OUTPUTS)], "convert:linux"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message + " (see v2v --help)")


def build_parser() -> Parser:
    p = Parser(prog="v2v", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Convert a guest or physical machine to run on KVM "
                           "(virt-v2v compatible).", epilog=EPILOG)
    a = p.add_argument
    a("args", nargs="*", metavar="DISK|XML", help="input: disk images, or one XML file")
    a("-i", dest="input", default="libvirt", help="input mode: " + ", ".join(inputs.INPUTS))
    a("-ic", dest="input_conn", help="input connection URI")
    a("-if", dest="input_format", help="input disk format (-i disk)")
    a("-ip", dest="input_password", metavar="FILE",
      help="input password file, first line (-i libvirt -ic esx://… or vpx://…; mode 0600)")
    a("-io", dest="input_options", action="append", default=[], metavar="OPTION[=VALUE]",
      help="input option (-i ova: skip-manifest)")
    a("-it", dest="input_transport", help="input transport (-i vmx: ssh)")
    a("-o", dest="output", default="libvirt", help="output mode: " + ", ".join(outputs.OUTPUTS))
    a("-oa", dest="allocation", choices=["sparse", "preallocated"], default="sparse")
    a("-oc", dest="output_conn", help="output connection URI")
    a("-of", dest="output_format", choices=["raw", "qcow2"], help="output disk format")
    a("-on", dest="output_name", help="rename the guest")
    a("-os", dest="output_storage", help="output storage: a directory (-o local/qemu/json/"
      "kubevirt), a storage pool (-o libvirt, default: default)")
    a("--overwrite", action="store_true",
      help="replace an existing guest's output files (default: refuse to overwrite)")
    a("-oo", dest="output_options", action="append", default=[], metavar="OPTION[=VALUE]")
    a("-b", "--bridge", action="append", default=[], metavar="IN:OUT")
    a("-n", "--network", action="append", default=[], metavar="IN:OUT")
    a("--mac", action="append", default=[], metavar="MAC:network|bridge:OUT",
      help="map one NIC by its MAC; MAC:ip:ADDR[,GW[,LEN[,DNS,…]]] gives it a static address")
    a("--root", default="ask", help="ask | single | first | /dev/… (multi-boot sources)")
    a("--key", action="append", default=[], metavar="SELECTOR:key:PASS|SELECTOR:file:FILE",
      help="passphrase of a LUKS device (SELECTOR: /dev/sdaN, its LUKS UUID, or all)")
    a("--keys-from-stdin", action="store_true",
      help="read LUKS passphrases from stdin, one per line, for devices no --key selects")
    a("--block-driver", choices=["virtio-blk", "virtio-scsi"], default="virtio-blk")
    a("--bandwidth", metavar="BPS", help="limit the input rate, bits/s (10M = 10 Mibit/s)")
    a("--bandwidth-file", metavar="FILE", help="read the input rate limit from FILE (network "
      "inputs; re-read while running)")
    a("--allow-external-files", action="store_true",
      help="let disk images name backing/data files and extents outside their directory")
    a("--print-source", action="store_true", help="print the source and exit")
    a("--machine-readable", nargs="?", const="stdout", metavar="FORMAT")
    a("--qemu-boot", action="store_true", help="same as -oo qemu-boot")
    a("--compressed", action="store_true",
      help="same as -oo compressed: qcow2 output (-of qcow2) with compressed clusters")
    a("-q", "--quiet", action="store_true")
    a("-v", "--verbose", action="store_true")
    a("-x", dest="trace", action="store_true", help="trace libguestfs calls (on stderr)")
    a("--verify-boot", action="store_true",
      help="after converting, boot the written guest once under qemu (never writing to it) and "
           "report login prompt / network / failure; exit 1 if it did not boot (also "
           f"${VERIFY_BOOT_ENV}=1: how a conversion server asks it of every p2v conversion)")
    a("--colours", "--colors", "--colour", "--color", dest="colours", action="store_true")
    a("-V", "--version", action="store_true")
    return p


def refuse_unsupported(argv: list[str]) -> None:
    for arg in argv:
        opt = arg.split("=", 1)[0]
        if opt in UNSUPPORTED:
            raise UsageError(f"option {opt} is not supported by pyv2v yet")


BANDWIDTH_RE = re.compile(r"(\d+)([kKmMgGtT]?)")


def parse_bandwidth(text: str) -> int:
    """virt-v2v's --bandwidth: bits per second; k/M/G/T multiply by 1024 (as nbdkit reads)."""
    m = BANDWIDTH_RE.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"--bandwidth {text}: expected a rate in bits per second, e.g. 10M")
    return int(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " ")


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
        # Plan.bandwidth is the copy's limit in bytes/s: local inputs only (see EPILOG).
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
