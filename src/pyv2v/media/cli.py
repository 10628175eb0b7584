"""`p2v-make-media`: build the p2v boot media (hybrid BIOS+UEFI ISO and a PXE set) from the
Debian packages of this machine's apt mirror, with an optional baked-in configuration."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import log, process
from ..errors import V2VError
from . import assemble, rootfs

EPILOG = """\
The live system (Debian 12, kernel, firmware from Debian main, python3, the p2v client, ssh,
nbdkit) is built once with debootstrap from the apt mirror this machine uses and cached by its
inputs under $PYV2V_MEDIA_CACHE (default /var/cache/pyv2v/media); media with another baked
configuration then take seconds.

Boot: with p2v.server=HOST on the kernel command line (or --server baked in) p2v converts
non-interactively and powers off (p2v.post/p2v.fail change that); otherwise the console UI runs
on tty1 (and on ttyS0 with the serial boot entry).  Alt+F2: root shell.  ip=… for a static
network (DHCP otherwise), vconsole.keymap=de for the keyboard.

examples:
  p2v-make-media -O /srv/p2v
  p2v-make-media -O /srv/p2v-fleet --server conv.example.com --identity ~/.ssh/id_p2v \\
      --hostkey SHA256:… --set p2v.output.type=local --set p2v.output.storage=/var/tmp
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="p2v-make-media",
        epilog=EPILOG,
        description="Build p2v boot media (ISO for CD/USB, PXE set).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-O",
        "--output-dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="write DIR/p2v.iso and DIR/pxe/ here",
    )
    p.add_argument("--no-iso", action="store_true", help="skip the ISO")
    p.add_argument("--no-pxe", action="store_true", help="skip the PXE set")
    p.add_argument("--server", help="bake p2v.remote.server (boots convert unattended)")
    p.add_argument("--port", help="bake p2v.remote.port")
    p.add_argument("--user", help="bake p2v.auth.username")
    p.add_argument(
        "--identity",
        type=Path,
        metavar="KEYFILE",
        help="bake this ssh private key (media then readable by root only)",
    )
    p.add_argument("--hostkey", metavar="SHA256:FP", help="bake p2v.hostkey (pin the server)")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="bake any p2v.* setting, e.g. p2v.output.type=local (repeatable)",
    )
    p.add_argument(
        "--append",
        default="",
        metavar="ARGS",
        help="extra kernel command line arguments for every boot entry",
    )
    p.add_argument(
        "--serial",
        action="store_true",
        help="boot with the serial console ttyS0 by default (ISO and PXE)",
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached live system")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def settings_of(ns: argparse.Namespace) -> list[tuple[str, str]]:
    out = [
        (k, v)
        for k, v in (
            ("p2v.remote.server", ns.server),
            ("p2v.remote.port", ns.port),
            ("p2v.auth.username", ns.user),
            ("p2v.hostkey", ns.hostkey),
        )
        if v is not None
    ]
    for item in ns.settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise V2VError(f"--set {item!r}: expected KEY=VALUE")
        out.append((key.strip(), value.strip()))
    keys = {k if k.startswith("p2v.") else "p2v." + k for k, _ in out}
    if ns.server is not None and "p2v.post" not in keys:
        out.append(("p2v.post", "poweroff"))  # unattended: done means off (as the reference)
    return out


def main(argv: list[str] | None = None) -> int:
    log.configure(prog="p2v-make-media")
    ns = build_parser().parse_args(argv)
    log.configure(verbose=ns.verbose)
    try:
        settings = settings_of(ns)
        assemble.config_lines(settings)  # bad settings fail before the long build
        start = time.monotonic()
        base = rootfs.ensure_base(rebuild=ns.rebuild)
        res = assemble.make(
            base,
            ns.output_dir,
            settings=settings,
            identity=ns.identity,
            append=ns.append,
            serial=ns.serial,
            iso=not ns.no_iso,
            pxe=not ns.no_pxe,
        )
        log.message(
            f"Done in {time.monotonic() - start:.0f} s (live system built in "
            f"{base.manifest['build_seconds']} s, cached in {base.dir})"
        )
        if res.iso:
            log.info(
                f"ISO (BIOS+UEFI, CD or USB: dd it to the stick): {res.iso} "
                f"({res.iso.stat().st_size >> 20} MiB)"
            )
        if res.pxe:
            log.info(
                f"PXE: {res.pxe}/vmlinuz {res.pxe}/initrd.img "
                f"({(res.pxe / 'initrd.img').stat().st_size >> 20} MiB)"
            )
            log.info(f"PXE kernel command line ({res.pxe}/cmdline.txt): {res.cmdline}")
        if res.secret:
            log.warning("the media hold an ssh private key: they are readable by root only")
        return 0
    except V2VError as e:
        log.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        process.cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
