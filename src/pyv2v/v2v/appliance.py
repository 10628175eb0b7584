"""The libguestfs appliance for one conversion: launch once, inspect, mount, trim, close.

One handle serves inspection, conversion and trimming (a launch costs ~25 s under TCG).  Drives
are the qcow2 overlays, added with discard enabled so `fstrim` turns free space into zero
clusters that the copy then skips.  libguestfs runs with the accelerator from accel.py.

The launch has a watchdog: libguestfs waits for its appliance without a deadline, and a qemu
that hangs while booting it (seen under TCG: both vCPUs spinning for 30 minutes) would hang the
conversion.  After LAUNCH_TIMEOUT seconds the appliance's qemu (our child that appeared during
the launch) is killed and the launch is tried once more with a new handle; a second hang is a
one-line error.  A cancel during the launch kills that qemu too.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from .. import accel, log, process
from ..errors import V2VError
from .convert.windows.facts import UNSAFE_ADVICE, bitlocker_devices, unsafe_ntfs
from .snapshots import drop_snapshot_roots
from .types import Inspect

ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
# Free space needed before conversion, as virt-v2v checks: mountpoint → bytes.
FREE_SPACE_NEEDED = {"/": 100 * 1024**2, "/boot": 50 * 1024**2}
LAUNCH_TIMEOUT = float(os.environ.get("PYV2V_LAUNCH_TIMEOUT", "300"))  # seconds
LAUNCH_TRIES = 2


def qemu_children() -> set[int]:
    """PIDs of this process's children whose command is qemu (the appliance's hypervisor)."""
    me, found = os.getpid(), set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm, rest = stat[stat.find("(") + 1: stat.rfind(")")], stat[stat.rfind(")") + 2:]
        fields = rest.split()
        if len(fields) > 1 and fields[1] == str(me) and comm.startswith("qemu"):
            found.add(int(d))
    return found


class _Hung(Exception):
    pass


class Appliance:
    def __init__(self, overlays: list[str]) -> None:
        accel.apply_to_environ()
        os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
        self.pid = 0
        self.mounted: list[str] = []
        self._launching: set[int] | None = None  # qemu children before the launch in progress
        self.g: Any = None
        self._hook = process.on_cleanup(self.kill)
        for attempt in range(1, LAUNCH_TRIES + 1):
            self.g = self._handle(overlays)
            try:
                self._launch()
                break
            except _Hung:
                self._drop_handle()
                if attempt == LAUNCH_TRIES:
                    self.close()
                    raise V2VError(f"the libguestfs appliance did not start within "
                                   f"{LAUNCH_TIMEOUT:.0f} s, {LAUNCH_TRIES} times (its qemu "
                                   f"under {accel.detect().name} hung)") from None
                log.warning(f"the libguestfs appliance did not start within "
                            f"{LAUNCH_TIMEOUT:.0f} s: its qemu was killed; trying again")
            except RuntimeError as e:
                self.close()
                raise V2VError(f"could not start the libguestfs appliance: {e}") from e
        self.pid = int(self.g.get_pid())

    @staticmethod
    def _handle(overlays: list[str]) -> Any:
        import guestfs  # Debian python3-guestfs (system site-packages)

        g = guestfs.GuestFS(python_return_dict=True)
        g.set_memsize(int(os.environ.get("PYV2V_APPLIANCE_MEMSIZE", "2048")))
        g.set_smp(max(1, min(2, os.cpu_count() or 1)))
        if log.verbose():
            g.set_verbose(True)
        if log.trace():  # -x: every libguestfs call and its result, on stderr
            g.set_trace(True)
        g.set_network(False)
        for ov in overlays:
            g.add_drive_opts(ov, format="qcow2", readonly=False, cachemode="unsafe",
                             discard="besteffort")
        return g

    def _launch(self) -> None:
        """g.launch() under the watchdog; _Hung if it had to kill the appliance's qemu."""
        self._launching = before = qemu_children()
        done = threading.Event()
        killed: list[int] = []

        def watchdog() -> None:
            if not done.wait(LAUNCH_TIMEOUT):
                for pid in qemu_children() - before:
                    killed.append(pid)
                    _sigkill(pid)

        threading.Thread(target=watchdog, daemon=True, name="appliance-watchdog").start()
        try:
            self.g.launch()
        except RuntimeError:
            if killed:
                raise _Hung() from None
            raise
        finally:
            done.set()
            self._launching = None
        if killed:  # killed just as the launch returned: the handle is unusable
            raise _Hung()

    def _drop_handle(self) -> None:
        g, self.g = self.g, None
        try:
            g.close()
        except RuntimeError as e:
            log.debug(f"closing the hung appliance's handle: {e}")

    # Inspection ----------------------------------------------------------------------------

    def roots(self) -> list[str]:
        locked = bitlocker_devices(self.g)
        if locked:
            raise V2VError(f"the source has BitLocker-encrypted volumes ({', '.join(locked)}), "
                           "which cannot be read or converted: decrypt them in the guest "
                           "(manage-bde -off C:) and shut it down cleanly, then convert again")
        try:
            found = list(self.g.inspect_os())
        except RuntimeError as e:
            if "hivex" not in str(e).lower():
                raise
            raise V2VError("inspection failed reading the guest's Windows registry: a hive is "
                           f"corrupt ({str(e).splitlines()[0]})") from None
        roots = drop_snapshot_roots(self.g, found)
        unsafe = None if roots else unsafe_ntfs(self.g)
        if unsafe:
            raise V2VError(f"{UNSAFE_ADVICE}; if it was not hibernated, run chkdsk /f in the "
                           f"guest and shut it down fully. Original error: {unsafe}")
        return roots

    def inspect(self, root: str) -> Inspect:
        g = self.g
        mps = g.inspect_get_mountpoints(root)
        order = tuple(sorted(mps.items(), key=lambda kv: len(kv[0])))
        return Inspect(
            root=root, type=g.inspect_get_type(root), distro=g.inspect_get_distro(root),
            major=g.inspect_get_major_version(root), minor=g.inspect_get_minor_version(root),
            arch=g.inspect_get_arch(root), product_name=g.inspect_get_product_name(root),
            package_format=g.inspect_get_package_format(root),
            package_management=g.inspect_get_package_management(root),
            hostname=g.inspect_get_hostname(root), mountpoints=order,
            firmware=self._firmware(),
        )

    def _firmware(self) -> str:
        g = self.g
        for dev in g.list_devices():
            try:
                if g.part_get_parttype(dev) != "gpt":
                    continue
                for p in g.part_list(dev):
                    if g.part_get_gpt_type(dev, p["part_num"]).upper() == ESP_GUID:
                        return "uefi"
            except RuntimeError:
                continue
        return "bios"

    def mount(self, inspect: Inspect) -> None:
        for mp, dev in inspect.mountpoints:
            try:
                self.g.mount(dev, mp)
                self.mounted.append(mp)
            except RuntimeError as e:
                if mp != "/":
                    log.warning(f"could not mount {dev} on {mp}: {e}")
                elif "unsafe state" in str(e) or "hibernat" in str(e).lower():
                    raise V2VError(f"{UNSAFE_ADVICE}. Original error: "
                                   f"{str(e).splitlines()[0]}") from None
                else:
                    raise V2VError(f"could not mount the guest's root filesystem {dev}: "
                                   f"{str(e).splitlines()[0]}") from None

    def check_free_space(self) -> None:
        for mp, need in FREE_SPACE_NEEDED.items():
            if mp not in self.mounted:
                continue
            st = self.g.statvfs(mp)
            free = st["bavail"] * st["bsize"]
            if free < need:
                raise V2VError(f"not enough free space in the guest's {mp} for the conversion: "
                               f"{free // 1024**2} MiB free, {need // 1024**2} MiB needed")

    def used_bytes(self) -> int:
        """Bytes in use on the guest's mounted filesystems (an estimate of the data to copy)."""
        total = 0
        for mp in self.mounted:
            st = self.g.statvfs(mp)
            total += (st["blocks"] - st["bfree"]) * st["frsize"]
        return total

    def trim(self) -> None:
        for mp in sorted(self.mounted, key=len, reverse=True):
            try:
                self.g.fstrim(mp)
            except RuntimeError as e:
                log.debug(f"fstrim {mp}: {e}")

    def kill(self) -> None:
        """Cancel path (any thread): stop the appliance at once; blocking calls then fail
        (during the launch: the qemu that appeared since it began)."""
        if self.pid:
            _sigkill(self.pid)
        elif (before := self._launching) is not None:
            for pid in qemu_children() - before:
                _sigkill(pid)

    def close(self) -> None:
        process.cancel_cleanup(self._hook)
        g, self.g = self.g, None
        if g is None:
            return
        try:
            g.umount_all()
            g.shutdown()
        except RuntimeError as e:
            log.debug(f"appliance shutdown: {e}")
        g.close()


def _sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
