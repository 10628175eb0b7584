"""Hardware discovery of the physical machine from /sys, /proc and lscpu (PROTOCOL.md §7).

Every path is read under a `root` prefix so tests point discovery at fake sysfs/procfs trees.
Disks are /sys/block entries named sd*, hd*, vd*, nvme*, cciss!*, ubd*, minus the device that
holds the running root filesystem (found from /proc/self/mountinfo and the sysfs `dev` numbers,
so no /dev access is needed) and removable drives with no medium (`removable`=1, `size`=0).
sr* are removable (CD/DVD).  NICs are em*, en*, eth*, wl* in /sys/class/net with their MAC.
CPU vendor/topology/flags come from lscpu output; ACPI from /sys/firmware/acpi; the boot
firmware from /sys/firmware (efi/ present ⇒ uefi, else bios; none ⇒ unknown); memory from
/proc/meminfo; the RTC basis from /sys/class/rtc/rtc0/since_epoch versus the system clock.
`check_disk(disk)` vets a disk to convert (a /dev name or an image path) without ever blocking:
stat first, only block devices and regular files, readable, not empty.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass, field

from .. import log, process
from ..errors import V2VError

DISK_PREFIXES = ("cciss!", "hd", "nvme", "sd", "ubd", "vd")
REMOVABLE_PREFIXES = ("sr",)
NIC_PREFIXES = ("em", "en", "eth", "wl")
VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}


@dataclass
class CpuInfo:
    vendor: str | None = None
    model: str | None = None
    sockets: int = 0
    cores: int = 0
    threads: int = 0
    apic: bool = False
    pae: bool = False
    acpi: bool = False


@dataclass
class Hardware:
    hostname: str = ""
    online_cpus: int = 1
    memory: int = 0  # bytes, as reported by /proc/meminfo
    cpu: CpuInfo = field(default_factory=CpuInfo)
    rtc_basis: str = "unknown"  # unknown | utc | localtime
    rtc_offset: int = 0  # seconds the RTC runs ahead of UTC (utc basis only)
    disks: list[str] = field(default_factory=list)
    removable: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    macs: dict[str, str] = field(default_factory=dict)
    firmware: str = "unknown"  # what the machine booted with: uefi | bios | unknown


def _read(root: str, path: str) -> str | None:
    try:
        with open(os.path.join(root, path.lstrip("/"))) as f:
            return f.read().strip()
    except OSError:
        return None


def _listdir(root: str, path: str) -> list[str]:
    try:
        return sorted(os.listdir(os.path.join(root, path.lstrip("/"))))
    except OSError:
        return []


def parse_lscpu(text: str) -> CpuInfo:
    """Vendor, topology and apic/pae flags from `lscpu` output."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    cpu = CpuInfo(vendor=VENDORS.get(fields.get("Vendor ID", "")))

    def num(key: str) -> int:
        try:
            return int(fields.get(key, "0").split()[0])
        except (ValueError, IndexError):
            return 0

    cpu.sockets = num("Socket(s)")
    cpu.cores = num("Core(s) per socket")
    cpu.threads = num("Thread(s) per core")
    flags = set(fields.get("Flags", "").split())
    cpu.apic = "apic" in flags
    cpu.pae = "pae" in flags
    return cpu


def parse_cpu_list(text: str) -> int:
    """Count the CPUs in a sysfs list like `0-3,6`."""
    count = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        count += int(hi) - int(lo) + 1 if hi else 1
    return count


def root_device(root: str) -> str | None:
    """major:minor of the filesystem mounted at / (from mountinfo)."""
    text = _read(root, "/proc/self/mountinfo") or ""
    found = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 4 and parts[4] == "/":
            found = parts[2]  # the last mount on / is the one in effect
    return found


def _devnos(root: str, dev: str) -> set[str]:
    """Device numbers of block device `dev` and its partitions."""
    nums = {_read(root, f"/sys/block/{dev}/dev")}
    nums |= {_read(root, f"/sys/block/{dev}/{p}/dev")
             for p in _listdir(root, f"/sys/block/{dev}") if p.startswith(dev)}
    return {n for n in nums if n}


def root_devnos(root: str, rootdev: str) -> set[str]:
    """`rootdev` plus, for device-mapper/md roots, every device underneath it."""
    result = {rootdev}
    todo = [d for d in _listdir(root, "/sys/block")
            if _read(root, f"/sys/block/{d}/dev") == rootdev]
    while todo:
        dev = todo.pop()
        for slave in _listdir(root, f"/sys/block/{dev}/slaves"):
            num = _read(root, f"/sys/class/block/{slave}/dev")
            if num and num not in result:
                result.add(num)
                todo.append(slave)
    return result


def _no_medium(root: str, dev: str) -> bool:
    return (_read(root, f"/sys/block/{dev}/removable") == "1"
            and _read(root, f"/sys/block/{dev}/size") in ("0", None))


def find_disks(root: str = "/") -> tuple[list[str], list[str]]:
    """(fixed disks, removable drives) as device names (cciss!c0d0 → cciss/c0d0)."""
    rootdev = root_device(root)
    in_use = root_devnos(root, rootdev) if rootdev else set()
    disks: list[str] = []
    removable: list[str] = []
    for dev in _listdir(root, "/sys/block"):
        if dev.startswith(DISK_PREFIXES):
            if _no_medium(root, dev):
                continue
            if _devnos(root, dev) & in_use:
                continue
            disks.append(dev.replace("!", "/"))
        elif dev.startswith(REMOVABLE_PREFIXES):
            removable.append(dev)
    return disks, removable


def find_interfaces(root: str = "/") -> tuple[list[str], dict[str, str]]:
    names = [n for n in _listdir(root, "/sys/class/net") if n.startswith(NIC_PREFIXES)]
    macs = {}
    for n in names:
        mac = _read(root, f"/sys/class/net/{n}/address")
        if mac:
            macs[n] = mac
    return names, macs


def find_firmware(root: str = "/") -> str:
    """uefi if the kernel was booted by UEFI firmware (/sys/firmware/efi exists), else bios;
    unknown when there is no /sys/firmware at all (not a Linux sysfs)."""
    if os.path.isdir(os.path.join(root, "sys/firmware/efi")):
        return "uefi"
    return "bios" if os.path.isdir(os.path.join(root, "sys/firmware")) else "unknown"


def read_rtc(root: str = "/", now: float | None = None,
             gmtoff: int | None = None) -> tuple[str, int]:
    """(basis, offset): how the hardware clock relates to UTC, rounded to 15 minutes."""
    text = _read(root, "/sys/class/rtc/rtc0/since_epoch")
    if not text or not text.isdigit():
        return "unknown", 0
    now = time.time() if now is None else now
    gmtoff = time.localtime(now).tm_gmtoff if gmtoff is None else gmtoff
    offset = round((int(text) - now) / 900) * 900
    if offset < -12 * 3600 or offset > 14 * 3600:
        log.warning(f"RTC: offset of the hardware clock from UTC is out of range ({offset} s)")
        return "unknown", 0
    # On a UTC (or Greenwich) timezone the two are indistinguishable: prefer utc.
    if gmtoff != 0 and offset == gmtoff:
        return "localtime", 0
    return "utc", offset


def run_lscpu() -> str:
    try:
        return process.run(["lscpu"], timeout=30, env={"LC_ALL": "C"}).out
    except V2VError as e:
        log.warning(f"cannot run lscpu: {e}")
        return ""


def discover(root: str = "/", lscpu_text: str | None = None) -> Hardware:
    """Describe the machine under `root` (lscpu is run only for the real root)."""
    if lscpu_text is None:
        lscpu_text = run_lscpu() if root == "/" else ""
    hw = Hardware()
    hw.hostname = _read(root, "/proc/sys/kernel/hostname") or ""
    online = _read(root, "/sys/devices/system/cpu/online")
    try:
        hw.online_cpus = max(1, parse_cpu_list(online)) if online else (os.cpu_count() or 1)
    except ValueError:
        hw.online_cpus = os.cpu_count() or 1
    for line in (_read(root, "/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            hw.memory = int(line.split()[1]) * 1024
    hw.cpu = parse_lscpu(lscpu_text)
    hw.cpu.acpi = os.path.exists(os.path.join(root, "sys/firmware/acpi"))
    hw.firmware = find_firmware(root)
    hw.rtc_basis, hw.rtc_offset = read_rtc(root)
    hw.disks, hw.removable = find_disks(root)
    hw.interfaces, hw.macs = find_interfaces(root)
    return hw


def device_path(disk: str) -> str:
    """`sda` → /dev/sda; an absolute path (a --disk image) stays as it is."""
    return disk if disk.startswith("/") else "/dev/" + disk


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISDIR, "directory"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "special file"


def check_disk(disk: str) -> int:
    """The size in bytes of `disk`, or a one-line V2VError: it must be a block device or a
    regular file, readable and not empty.  Nothing is opened before stat() says what it is (a
    FIFO would block the open; an NBD server would hang on it), and a block device is opened
    O_NONBLOCK only to read its size."""
    path = device_path(disk)
    what = f"disk {path}" if disk == path else f"disk {disk} ({path})"
    try:
        st = os.stat(path)
    except OSError as e:
        why = "no such file or device" if e.errno == errno.ENOENT else e.strerror
        raise V2VError(f"cannot use {what}: {why}") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise V2VError(f"{what} is a {_file_kind(st.st_mode)}, not a block device or a disk "
                       "image file")
    if not os.access(path, os.R_OK):
        raise V2VError(f"cannot read {what}: permission denied")
    size = st.st_size
    if stat.S_ISBLK(st.st_mode):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise V2VError(f"cannot open {what}: {e.strerror}") from None
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
    if size <= 0:
        raise V2VError(f"{what} is empty (0 bytes): nothing to convert")
    return size


def round_up_pow2(n: int) -> int:
    """The default guest memory: RAM rounded up to a power of two (the kernel hides some)."""
    return 1 << max(0, (n - 1).bit_length()) if n > 0 else 0
