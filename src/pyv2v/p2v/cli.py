"""The `p2v` command: options, configuration assembly, and the non-interactive (kernel) mode.

With a conversion server (p2v.server on /proc/cmdline or --cmdline, or --server) p2v converts
without asking anything, like the reference's kernel mode: p2v.pre, test connection,
conversion (events rendered as text), then p2v.post (default `poweroff` only as root with
p2v.server from the real /proc/cmdline) or p2v.fail.  SIGINT/SIGTERM/SIGHUP cancel the
conversion cleanly (a second one aborts at once).  Errors are one line and a non-zero exit.
Without a server (or with --tui), the interactive UI pyv2v.p2v.tui.run(cfg, hw, engine, …)
runs.  Both modes drive the same engine (engine.RealEngine), which owns every process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import signal
import string
import sys
from types import FrameType

from .. import __version__, log, process
from ..errors import (
    EXIT_INTERNAL,
    EXIT_STATUS_HELP,
    EXIT_USAGE,
    Cancelled,
    V2VError,
    exit_code_for_signal,
)
from . import config, hardware
from .engine import RealEngine
from .events import (
    DiskProgress,
    Event,
    Finished,
    HostKey,
    LogDir,
    RemoteLine,
    ServerInfoEvent,
    Status,
)
from .kernel_cmdline import Cmdline

EPILOG = """\
Settings come from (lowest precedence first): the hardware, --config FILE, the kernel command
line (/proc/cmdline, or --cmdline STR), then the flags below.  Kernel keys are the reference
virt-p2v ones: p2v.server, p2v.port, p2v.username, p2v.password, p2v.identity, p2v.sudo,
p2v.name, p2v.disks, p2v.o, p2v.os, p2v.oo, p2v.pre, p2v.post, p2v.fail, … (--dump-config
lists them all).  p2v.hostkey=SHA256:… pins the server's host key; otherwise it is trusted on
first use and recorded in our known_hosts file, and a changed key is refused.
p2v.pre/post/fail commands are split like a shell would but run without one.

examples:
  # convert this machine's disks to /var/tmp on conv.example.com, logging in with a key
  p2v --server conv.example.com --identity file:///root/.ssh/id_ed25519

  # a disk image stands in for a physical disk (testing), host key pinned
  p2v --server 192.0.2.7 --disk /var/tmp/disk.img --hostkey SHA256:abc… -o local --os /srv

  # what the PXE/ISO kernel command line would do, without running anything
  p2v --cmdline='p2v.server=conv p2v.password="s3cret word" p2v.o=local' --dump-config
"""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        log.error(f"{message} (try --help)")
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="p2v", description="Convert this physical machine to run on KVM, "
                       "using a virt-v2v conversion server reached over ssh.",
                       epilog=EPILOG + "\n" + EXIT_STATUS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages")
    p.add_argument("--colours", "--colors", "--colour", "--color", dest="colours",
                   action="store_true", help="ANSI colours even when not on a terminal")
    p.add_argument("--cmdline", metavar="STR", help="use STR instead of /proc/cmdline")
    p.add_argument("--config", metavar="FILE", help="read key=value settings from FILE")
    p.add_argument("--disk", "--test-disk", dest="disk_images", action="append", default=[],
                   metavar="PATH", help="a disk image standing in for a physical disk "
                   "(repeatable; replaces the discovered disks)")
    p.add_argument("--password-file", metavar="FILE",
                   help="read the ssh password from the first line of FILE")
    p.add_argument("--iso", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tui", action="store_true", help="interactive console UI even with a server")
    p.add_argument("--ascii", action="store_true", default=None, help="UI: ASCII only (TERM=linux)")
    config.add_arguments(p)
    return p


def random_name() -> str:
    return "p2v-" + "".join(secrets.choice(string.ascii_lowercase + string.digits)
                            for _ in range(8))


def assemble(ns: argparse.Namespace, cmdline: Cmdline, hw: hardware.Hardware | None,
             euid: int | None = None) -> config.Config:
    """The configuration from hardware, config file, kernel command line and flags.

    p2v.post defaults to `poweroff` only as root (`euid`, default ours) with p2v.server from
    the real /proc/cmdline, like the reference: nothing else needs the command line later."""
    cfg = config.Config()
    if hw is not None:
        config.apply_hardware(cfg, hw)
    if ns.disk_images:
        cfg.disks = []
        for path in ns.disk_images:  # stat first: a FIFO or an empty file fails at once
            hardware.check_disk(os.path.abspath(path))
            cfg.disks.append(os.path.abspath(path))
    if ns.config:
        unknown = config.apply_cmdline(cfg, config.read_config_file(ns.config))
        if unknown:
            raise V2VError(f"{ns.config}: unknown setting {unknown[0]}")
    for key in config.apply_cmdline(cfg, cmdline):
        log.warning(f"ignoring unknown kernel command line key {key}")
    config.apply_flags(cfg, ns)
    if ns.password_file:
        try:
            with open(ns.password_file) as f:
                cfg.password = f.readline().rstrip("\r\n")
        except OSError as e:
            raise V2VError(f"cannot read --password-file {ns.password_file}: "
                           f"{e.strerror}") from None
    if not cfg.guestname:
        cfg.guestname = random_name()
    if cfg.post is None and (os.geteuid() if euid is None else euid) == 0 and \
            cmdline.source == "proc" and cmdline.lookup("p2v.remote.server", "p2v.server"):
        cfg.post = "poweroff"
    return cfg


def render(event: Event) -> None:
    """Text rendering of engine events (the kernel-mode 'UI')."""
    if isinstance(event, Status):
        log.message(event.text)
    elif isinstance(event, HostKey):
        if event.pinned:
            log.message(f"host key of {event.host} matches the pinned {event.fingerprints[0]}")
        else:  # nobody is there to compare it: make it stand out in the log
            log.warning("*" * 72)
            log.warning(f"NEW HOST KEY: trusting the host key of {event.host} on first use: "
                        f"{', '.join(event.fingerprints)} (recorded in {event.known_hosts})")
            log.warning("compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_*.pub) "
                        "and pin it with p2v.hostkey=SHA256:… to refuse any other key")
            log.warning("*" * 72)
    elif isinstance(event, ServerInfoEvent):
        log.message(f"conversion server runs virt-v2v {event.version}")
    elif isinstance(event, LogDir):
        log.message(f"remote log directory: {event.path}")
    elif isinstance(event, RemoteLine):
        log.info(event.text)
    elif isinstance(event, DiskProgress):
        log.debug(f"{event.disk}: {event.done} of {event.total} bytes served")
    elif isinstance(event, Finished) and event.ok:
        log.message(event.message)


def kernel_mode(cfg: config.Config, hw: hardware.Hardware, engine: RealEngine) -> int:
    conv = engine.conversion(cfg, hw)
    conv.subscribe(render)

    received: list[int] = []  # the signal that cancelled the run sets the exit status

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if conv.cancelled:  # a second signal: stop waiting for the remote side
            raise Cancelled(f"{signal.Signals(signum).name}: stopped", received[0]
                            if received else signum)
        received.append(signum)
        log.warning(f"{signal.Signals(signum).name}: cancelling the conversion")
        conv.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    engine.run_hook("p2v.pre", cfg.pre)
    result = conv.run()
    if not result.ok:
        try:
            engine.run_hook("p2v.fail", cfg.fail)
        finally:
            if result.cancelled:
                raise Cancelled(result.message, received[0] if received else None)
        raise V2VError(result.message)
    engine.run_hook("p2v.post", cfg.post)
    return 0


def interactive(cfg: config.Config, hw: hardware.Hardware, engine: RealEngine,
                **opts: object) -> int:
    try:
        tui = importlib.import_module("pyv2v.p2v.tui")
        run = tui.run
    except (ImportError, AttributeError):
        raise V2VError("no conversion server given: use --server HOST or p2v.server=HOST "
                       "(the interactive UI is not available)") from None
    return int(run(cfg, hw, engine, **opts))


def _main(ns: argparse.Namespace) -> int:
    if ns.version:
        log.info(f"p2v pyv2v {__version__}")
        return 0
    cmdline = Cmdline.from_string(ns.cmdline) if ns.cmdline is not None else Cmdline.from_proc()
    hw = hardware.discover()
    cfg = assemble(ns, cmdline, hw)
    if cfg.dump_config_and_exit:
        sys.stdout.write(config.dump(cfg))
        return 0
    interactive_ui = bool(ns.tui or not cfg.server)
    if not interactive_ui:  # kernel mode: a bad setting fails before any hook or connection
        config.validate(cfg)
    engine = RealEngine()
    try:
        if interactive_ui:
            return interactive(cfg, hw, engine, iso=ns.iso, ascii=ns.ascii)
        return kernel_mode(cfg, hw, engine)
    finally:
        engine.close()


def main(argv: list[str] | None = None) -> int:
    log.configure(prog="p2v")
    ns = build_parser().parse_args(argv)
    log.configure(verbose=ns.verbose, colours=ns.colours)
    try:
        return _main(ns)
    except V2VError as e:
        log.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return exit_code_for_signal(signal.SIGINT)
    except Exception as e:  # noqa: BLE001 - a bug: still one line, traceback with -v
        log.internal_error(e)
        return EXIT_INTERNAL
    finally:
        process.cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
