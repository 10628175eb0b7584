"""One conversion run of the p2v engine: owns every process of the run, reports through events.

`Conversion(cfg)` runs the reference sequence (PROTOCOL.md §2–4): test connection, one
read-only NBD export (`cfg.nbd_server`) + `ssh -R` data connection per disk, the remote work
dir with its files, then the control connection (`ssh -tt`) running virt-v2v-wrapper.sh,
streaming virt-v2v's stdout lines live and ending with the conversion's exit code.  A server
whose virt-v2v says `nbd-unix-socket` (our v2v) gets its 0700 work dir first and each disk as a
0600 unix socket inside it (nbd_export.py); stock servers get loopback TCP ports, checked.
Observers (`subscribe(fn)`) receive the events of events.py; `run()` returns the final
`Finished` event and never raises V2VError.  `Conversion(cfg, session=s)` runs over the
engine's ssh `Session` (engine.py: one per server, shared with its test connection, left open
here); without one the conversion opens its own and closes it at the end.

`cancel()` is safe from any thread or a signal handler: it sends ^C over the control pty (the
remote session's processes get SIGINT); if the remote side is still there after GRACE seconds
it signals the remote process group (recorded in control.pid), then ends the control ssh (the
pty hangs up: SIGHUP).  Data ssh processes get SIGHUP, NBD servers SIGTERM; nothing survives.
A data connection dying mid-run is re-established (transport.py: bounded retries) or, once
the retries are exhausted, fails the conversion the same way, with its own message.
"""

from __future__ import annotations

import collections
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import IO

from .. import log, process, ssh
from ..errors import Cancelled, V2VError
from . import physical_xml, remote, wrapper
from .config import Config, validate
from .events import (
    DiskProgress,
    Event,
    Finished,
    HostKey,
    LogDir,
    Observer,
    RemoteLine,
    ServerInfoEvent,
    Status,
)
from .hardware import Hardware, find_firmware, find_interfaces
from .nbd_export import SOCKET_FEATURE, DataConn, make_remote_dir, open_data_conn, socket_path
from .session import SSH_FAILED, Session
from .transport import Transport

GRACE = 10.0  # seconds between ^C and the harder remote kill
PROGRESS_EVERY = 2.0


def _pump(stream: IO[str] | None, out: queue.Queue[str | None]) -> None:
    if stream is not None:
        for line in stream:
            out.put(line.rstrip("\r\n"))
    out.put(None)


class Conversion:
    _transport: Transport  # set when the control connection starts

    def __init__(self, cfg: Config, *, hw: Hardware | None = None,
                 session: Session | None = None) -> None:
        self.cfg = cfg
        self.hw = hw
        self.remote_dir: str | None = None
        self.server_info: remote.ServerInfo | None = None
        self._observers: list[Observer] = []
        self._cancel = threading.Event()
        self._lock = threading.RLock()  # cancel() may run in a signal handler
        self._control: process.Child | None = None
        self._conns: list[DataConn] = []
        self._session: Session | None = session
        self._owns_session = session is None  # a given session belongs to the engine
        self._failure: str | None = None
        self._tmpdir: str | None = None
        self._pin_reported = False

    # ---- observers -------------------------------------------------------------------
    def subscribe(self, fn: Observer) -> None:
        self._observers.append(fn)

    def emit(self, event: Event) -> None:
        for fn in list(self._observers):
            fn(event)

    # ---- public steps ------------------------------------------------------------------
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self.cfg)
        return self._session

    def test_connection(self) -> remote.ServerInfo:
        """Check the server (host key, login, virt-v2v version and features)."""
        s = self.session()
        self.emit(Status(f"Testing the connection to {s.target.display}"))
        self._check_pinned_key(s)
        info = remote.test_connection(s, self.cfg.output_type)
        self._report_new_keys()
        self.server_info = info
        self.emit(ServerInfoEvent(info.version, tuple(info.outputs)))
        return info

    def run(self) -> Finished:
        """The whole conversion; returns (and emits) the final event."""
        try:
            result = self._run()
        except V2VError as e:
            cancelled = isinstance(e, Cancelled) or self._cancel.is_set()
            msg = self._failure or ("conversion cancelled by user" if cancelled else str(e))
            result = Finished(False, None, msg, self.remote_dir, cancelled and not self._failure)
        finally:
            self.close()
        self.emit(result)
        return result

    def cancel(self) -> None:
        """Ask the run to stop (thread- and signal-safe; returns at once)."""
        self._cancel.set()
        with self._lock:
            control = self._control
        if control is not None and control.poll() is None and control.proc.stdin:
            try:  # ^C on the remote pty: SIGINT to the remote session's processes
                control.proc.stdin.write("\x03")
                control.proc.stdin.flush()
            except (OSError, ValueError):
                pass

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ---- internals ---------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("conversion cancelled by user")

    def _check_pinned_key(self, s: Session) -> None:
        if not s.target.hostkey:  # trust on first use: recorded and reported before any login
            s.check_host_key()
            self._report_new_keys()
        elif not self._pin_reported:
            s.check_host_key()
            self._pin_reported = True
            self.emit(HostKey(s.target.host, (s.target.hostkey,), True,
                              s.target.known_hosts_file))

    def _report_new_keys(self) -> None:
        s = self.session()
        fps = s.new_host_keys()
        if fps:
            self.emit(HostKey(s.target.host, tuple(fps), False, s.target.known_hosts_file))

    def _run(self) -> Finished:
        cfg = self.cfg
        self._check_cancel()
        if not cfg.disks:
            raise V2VError("no disks to convert: none were found in /sys/block and none "
                           "were given (p2v.disks=… or --disk PATH)")
        validate(cfg)  # guest name, ranges, disks: before any connection
        s = self.session()
        if not cfg.skip_test_connection and self.server_info is None:
            self.test_connection()
        self._check_pinned_key(s)
        # Like virt-p2v: ask the server for colours only if this client shows them.
        colours = bool(self.server_info and self.server_info.colours and log.colours())
        # A pyv2v server reads NBD unix sockets: its private work dir comes first and each disk
        # is forwarded to a 0600 socket inside it.  A stock server keeps the reference wire
        # (TCP forwards first, then the work dir), with the forwards checked loopback-only.
        sockets = bool(self.server_info and SOCKET_FEATURE in self.server_info.features)
        rdir = self.remote_dir = wrapper.remote_dir_name()
        self.emit(LogDir(rdir))
        if sockets:
            make_remote_dir(s, rdir)
        for i, disk in enumerate(cfg.disks):
            self._check_cancel()
            self.emit(Status(f"Starting local NBD server and data connection for {disk}"))
            sock = socket_path(rdir, disk, i) if sockets else None
            self._conns.append(open_data_conn(s, disk, cfg.nbd_server, sock, cfg.compress))
        self._report_new_keys()
        hw = self.hw
        macs = hw.macs if hw else find_interfaces("/")[1]
        topo = (hw.cpu.sockets, hw.cpu.cores, hw.cpu.threads) if hw else None
        firmware = hw.firmware if hw else find_firmware("/")
        xml = physical_xml.build(cfg, [c.endpoint for c in self._conns], macs, topo,
                                 firmware=firmware)
        self._tmpdir = tempfile.mkdtemp(prefix="p2v-files-")
        required, optional = wrapper.write_local_files(self._tmpdir, cfg, rdir, xml, colours)
        self._check_cancel()
        self.emit(Status("Setting up the control connection"))
        if not sockets:
            make_remote_dir(s, rdir, [c.remote_port for c in self._conns])
        s.scp(required + optional, rdir)  # all exist locally: one scp session
        self._check_cancel()
        self.emit(Status("Doing conversion"))
        self._transport = Transport(s, self._conns, cfg.nbd_server, self.emit)
        rc, err = self._control_loop(s, rdir)
        self._check_cancel()
        if rc == 0:
            return Finished(True, 0, "Conversion finished successfully."
                            + self._transport.summary(), rdir)
        if rc == SSH_FAILED:
            raise V2VError(f"control connection failed: {ssh.explain(err, s.target)}")
        return Finished(False, rc, f"virt-v2v failed with exit code {rc} (log: {rdir}/"
                        f"{wrapper.LOG} on the server)", rdir)

    def _control_loop(self, s: Session, rdir: str) -> tuple[int, str]:
        argv = ssh.ssh_argv(s.target, wrapper.control_command(rdir), tty=True)
        child = s.spawn(argv, stdin=subprocess.PIPE)
        with self._lock:
            self._control = child
        lines: queue.Queue[str | None] = queue.Queue()
        errs: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(child.proc.stdout, lines), daemon=True).start()
        threading.Thread(target=_pump, args=(child.proc.stderr, errs), daemon=True).start()
        if self._cancel.is_set():
            self.cancel()
        cancel_at: float | None = None
        killed = False
        eof = False
        next_progress = 0.0
        served: dict[str, int] = {}
        while not (eof and child.poll() is not None):
            try:
                item = lines.get(timeout=0.25)
                while True:
                    if item is None:
                        eof = True
                    else:
                        self.emit(RemoteLine(item))
                        self._transport.on_line(item)
                    item = lines.get_nowait()
            except queue.Empty:
                pass
            if not self._cancel.is_set() and (failure := self._transport.check()):
                self._failure = failure  # a dead data connection that could not be resumed
                self.cancel()
            now = time.monotonic()
            if self._cancel.is_set():
                cancel_at = cancel_at or now
                if not killed and now - cancel_at > GRACE:
                    killed = True
                    self._remote_kill(s, rdir)
                    child.terminate()
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                for c in self._conns:
                    done = c.server.bytes_read()
                    if done is not None and done != served.get(c.disk):
                        served[c.disk] = done
                        self.emit(DiskProgress(c.disk, done, c.size))
        rc = child.wait()
        tail: collections.deque[str] = collections.deque(maxlen=20)
        try:
            while (e := errs.get(timeout=2)) is not None:
                tail.append(e)
        except queue.Empty:
            pass
        return rc, "\n".join(tail)

    def _remote_kill(self, s: Session, rdir: str) -> None:
        """The remote session ignored ^C: signal its process group directly."""
        log.debug("remote conversion still running after ^C: killing its process group")
        for sig in ("TERM", "KILL"):
            try:
                s.run(wrapper.kill_command(rdir, sig), timeout=30, what="remote kill")
            except V2VError as e:
                log.debug(f"remote kill -{sig}: {e}")
                return
            time.sleep(1)

    def close(self) -> None:
        """Stop everything this conversion started (idempotent)."""
        if (transport := getattr(self, "_transport", None)) is not None:
            transport.close()  # first: its threads start ssh commands through the session
        with self._lock:
            control, self._control = self._control, None
        if control is not None and control.poll() is None:
            control.signal_group(signal.SIGHUP)
            control.terminate()
        while self._conns:
            self._conns.pop().close()
        if self._session is not None and self._owns_session:
            self._session.close()
            self._session = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
