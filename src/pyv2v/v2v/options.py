"""v2v's option table: the argparse parser with virt-v2v's options and --help text, the
`--machine-readable` feature tokens, the upstream options refused rather than ignored, and the
--bandwidth rate syntax.  cli.py uses them to build a Plan and run it.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..errors import EXIT_STATUS_HELP, UsageError
from ..rates import parse_rate
from . import inputs, outputs

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


def parse_bandwidth(text: str) -> int:
    """virt-v2v's --bandwidth (rates.py's syntax); a usage error if it is not a rate above 0."""
    bps = parse_rate(text)
    if not bps:
        raise UsageError(f"--bandwidth {text}: expected a rate in bits per second, e.g. 10M")
    return bps
