"""Shared helpers for the TUI tests: a fake engine, fake hardware and sysfs, a Pilot runner.

Kept in a test module (not a plugin) so that only the tui tests import it; pytest collects no
tests from it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from pyv2v.errors import V2VError
from pyv2v.p2v.config import Config
from pyv2v.p2v.events import (
    DiskProgress,
    Finished,
    HostKey,
    LogDir,
    Observer,
    RemoteLine,
    ServerInfoEvent,
    Status,
)
from pyv2v.p2v.hardware import CpuInfo, Hardware
from pyv2v.p2v.remote import ServerInfo
from pyv2v.p2v.tui.app import P2VApp
from pyv2v.p2v.tui.glyphs import screen_text

FP = "SHA256:" + "A" * 43
OUTPUTS = ["glance", "json", "libvirt", "local", "null", "openstack", "qemu", "rhv"]
FEATURES = {"virt-v2v", "libguestfs-rewrite", "colours-option", "in-place", "io/oo",
            "mac-option", "input:disk", *(f"output:{o}" for o in OUTPUTS)}


class FakeConversion:
    """Emits a scripted run; `hold` keeps it running until cancel() (from any thread)."""

    def __init__(self, cfg: Config, hold: bool, fail: bool) -> None:
        self.cfg, self.hold, self.fail = cfg, hold, fail
        self.observers: list[Observer] = []
        self.cancelled = threading.Event()
        self.running = threading.Event()

    def subscribe(self, fn: Observer) -> None:
        self.observers.append(fn)

    def emit(self, e: object) -> None:
        for fn in self.observers:
            fn(e)  # type: ignore[arg-type]

    def run(self) -> Finished:
        self.running.set()
        rdir = "/tmp/virt-p2v-20240101-abcdefgh"
        self.emit(Status("Starting local NBD server and data connection for sda"))
        self.emit(LogDir(rdir))
        self.emit(Status("Doing conversion"))
        self.emit(RemoteLine("[   0.0] Setting up the source: -i libvirtxml physical.xml"))
        self.emit(DiskProgress("sda", 8 << 30, 16 << 30))
        self.emit(RemoteLine("[   1.5] Copying disk 1/1"))
        if self.hold:
            self.cancelled.wait(30)
        if self.cancelled.is_set():
            result = Finished(False, None, "conversion cancelled by user", rdir, True)
        elif self.fail:
            result = Finished(False, 3, f"virt-v2v failed with exit code 3 (log: {rdir}/"
                              "virt-v2v-conversion-log.txt on the server)", rdir)
        else:
            self.emit(DiskProgress("sda", 16 << 30, 16 << 30))
            self.emit(RemoteLine("[  12.0] Finishing off"))
            result = Finished(True, 0, "Conversion finished successfully.", rdir)
        self.emit(result)
        return result

    def cancel(self) -> None:
        self.cancelled.set()


class FakeEngine:
    def __init__(self, *, recorded: bool = False, fail_test: str | None = None,
                 hold: bool = False, fail: bool = False) -> None:
        self.recorded, self.fail_test, self.hold, self.fail = recorded, fail_test, hold, fail
        self.tested: list[Config] = []
        self.scanned = 0
        self.conversions: list[FakeConversion] = []
        self.powered: list[str] = []

    def recorded_keys(self, cfg: Config) -> list[tuple[str, str]]:
        return [("ssh-ed25519", FP)] if self.recorded else []

    def scan_keys(self, cfg: Config) -> list[tuple[str, str]]:
        self.scanned += 1
        return [("ssh-rsa", "SHA256:" + "R" * 43), ("ssh-ed25519", FP)]

    def test_connection(self, cfg: Config, observer: Observer) -> ServerInfo:
        self.tested.append(cfg)
        observer(Status(f"Testing the connection to {cfg.username}@{cfg.server}"))
        if cfg.hostkey:
            observer(HostKey(cfg.server or "", (cfg.hostkey,), True, "known_hosts"))
        if self.fail_test:
            raise V2VError(self.fail_test)
        observer(ServerInfoEvent("2.2.0", tuple(OUTPUTS)))
        return ServerInfo("2.2.0", set(FEATURES), ["disk"], list(OUTPUTS))

    def conversion(self, cfg: Config, hw: Hardware | None) -> FakeConversion:
        conv = FakeConversion(cfg, self.hold, self.fail)
        self.conversions.append(conv)
        return conv

    def power(self, action: str) -> None:
        self.powered.append(action)


def fake_sysfs(root: Path) -> str:
    """sysfs files for disk sda (16G), sr0, NICs eth0 (up) and eth1 (down)."""
    def put(path: str, text: str) -> None:
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n")
    put("/sys/block/sda/size", str(16 << 21))
    put("/sys/block/sda/device/model", "QEMU HARDDISK")
    put("/sys/block/sda/device/serial", "QM00001")
    put("/sys/block/sdb/size", str(1 << 21))
    put("/sys/block/sdb/device/model", "USB STICK")
    put("/sys/class/net/eth0/operstate", "up")
    put("/sys/class/net/eth1/operstate", "down")
    return str(root)


def fake_hw() -> Hardware:
    return Hardware(hostname="physhost", online_cpus=4, memory=8 << 30,
                    cpu=CpuInfo("Intel", "Xeon", 1, 4, 1, True, True, True),
                    disks=["sda", "sdb"], removable=["sr0"], interfaces=["eth0", "eth1"],
                    macs={"eth0": "52:54:00:12:34:56", "eth1": "52:54:00:ab:cd:ef"})


def base_config(**kw: object) -> Config:
    cfg = Config(guestname="physhost", cores=4, memory=8 << 30, disks=["sda", "sdb"],
                 removable=["sr0"], interfaces=["eth0", "eth1"])
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def make_app(tmp: Path, engine: FakeEngine | None = None, cfg: Config | None = None,
             **kw: object) -> P2VApp:
    kw.setdefault("ascii", True)
    return P2VApp(cfg or base_config(), fake_hw(), engine=engine or FakeEngine(),
                  devroot=fake_sysfs(tmp / "root"), clock=lambda: 100.0, **kw)  # type: ignore[arg-type]


def drive(app: P2VApp, script: Callable[..., Awaitable[None]], size: tuple[int, int] = (80, 25)
          ) -> None:
    """Run `script(pilot)` against the app, headless, at 80x25."""
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await script(pilot)
    asyncio.run(main())


async def until(pilot: object, pred: Callable[[], bool], timeout: float = 10) -> None:
    """Let the app run until pred() holds (worker threads report through the event loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "timed out waiting for the UI"
        await pilot.pause(0.05)  # type: ignore[attr-defined]


async def push(pilot: object, selector: str) -> None:
    """Press a button the keyboard way: focus it, then Enter."""
    app = pilot.app  # type: ignore[attr-defined]
    button = app.screen.query_one(selector)
    await until(pilot, lambda: not button.has_class("-active"))  # a press is ignored meanwhile
    button.focus()
    await pilot.press("enter")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def text_of(pilot: object) -> str:
    """The screen as text once it has been redrawn (two equal reads 50 ms apart)."""
    app = pilot.app  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    previous = screen_text(app)
    for _ in range(100):
        await pilot.pause(0.05)  # type: ignore[attr-defined]
        text = screen_text(app)
        if text == previous:
            return text
        previous = text
    return previous
