"""Is hardware acceleration really usable here?  Answer `kvm` or `tcg`, with the reason.

`/dev/kvm` being present is not enough: on nested hosts without VMX (kvm_pvm) firmware runs but a
stock Linux kernel never starts.  So the probe boots the host's own kernel with no root filesystem
under `-accel kvm` and waits (at most PROBE_TIMEOUT seconds) for the panic that proves the kernel
ran.  The answer is cached per boot (keyed by the kernel's boot_id) and `PYV2V_ACCEL=kvm|tcg`
overrides it.  `qemu_args()` and `libguestfs_env()` configure qemu and libguestfs from it.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from dataclasses import dataclass

from . import log, process

PROBE_TIMEOUT = 8.0
PROBE_VERSION = 2  # part of the cache key: a changed probe is re-run
_PROOF = ("Kernel panic", "VFS: Unable to mount root", "Run /init")


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" or "tcg"
    reason: str


_cached: Accel | None = None


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _cache_path() -> str:
    return os.path.join(tempfile.gettempdir(), f"pyv2v-accel-v{PROBE_VERSION}-{_boot_id()}.json")


def _host_kernel() -> str | None:
    kernels = sorted(k for k in glob.glob("/boot/vmlinuz-*") if os.access(k, os.R_OK))
    return kernels[-1] if kernels else None


def probe(timeout: float = PROBE_TIMEOUT, kernel: str | None = None) -> Accel:
    """Boot a real kernel under KVM and see whether it gets anywhere (no caching)."""
    if not os.path.exists("/dev/kvm"):
        return Accel("tcg", "/dev/kvm does not exist")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel("tcg", "/dev/kvm is not accessible to this user")
    kernel = kernel or _host_kernel()
    if kernel is None:
        return Accel("tcg", "no readable kernel in /boot to probe KVM with")
    argv = ["qemu-system-x86_64", "-accel", "kvm", "-m", "256", "-nodefaults", "-display", "none",
            "-no-reboot", "-serial", "stdio", "-monitor", "none", "-kernel", kernel,
            "-append", "console=ttyS0 panic=-1 loglevel=4"]
    if process.which(argv[0]) is None:
        return Accel("tcg", f"{argv[0]} is not installed")
    start = time.monotonic()
    res = process.run(argv, kill_after=timeout, check=False)
    text = res.out + res.err
    took = time.monotonic() - start
    if any(p in text for p in _PROOF):
        return Accel("kvm", f"a test kernel booted under KVM in {took:.1f} s")
    hint = "firmware ran, kernel hung" if "Booting from ROM" in text else "no kernel output"
    return Accel("tcg", f"/dev/kvm is present but a test kernel did not boot under KVM within "
                        f"{timeout:g} s ({hint}): using TCG")


def detect(use_cache: bool = True) -> Accel:
    """The accelerator to use: PYV2V_ACCEL override, else a per-boot cached probe."""
    global _cached
    forced = os.environ.get("PYV2V_ACCEL", "").strip().lower()
    if forced in ("kvm", "tcg"):
        return Accel(forced, f"forced by PYV2V_ACCEL={forced}")
    if use_cache and _cached is not None:
        return _cached
    path = _cache_path()
    if use_cache:
        try:
            with open(path) as f:
                d = json.load(f)
            _cached = Accel(d["name"], d["reason"] + " (cached for this boot)")
            return _cached
        except (OSError, ValueError, KeyError):
            pass
    result = probe()
    _cached = result
    try:
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"name": result.name, "reason": result.reason}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    log.debug(f"accelerator: {result.name}: {result.reason}")
    return result


def qemu_args(accel: Accel | None = None) -> list[str]:
    """qemu arguments selecting the accelerator (and a CPU model that works with it)."""
    a = accel or detect()
    if a.name == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg", "-cpu", "max"]


def libguestfs_env(accel: Accel | None = None) -> dict[str, str]:
    """Environment for libguestfs so the appliance uses the working accelerator.

    The full value is returned (merged with any settings already in this environment), so it
    can be handed to other processes, e.g. an sshd's sessions, as it is.
    """
    a = accel or detect()
    env: dict[str, str] = {}
    if a.name == "tcg":
        current = [p for p in os.environ.get("LIBGUESTFS_BACKEND_SETTINGS", "").split(":") if p]
        if "force_tcg" not in current:
            current.append("force_tcg")
        env["LIBGUESTFS_BACKEND_SETTINGS"] = ":".join(current)
    return env


def apply_to_environ(accel: Accel | None = None) -> Accel:
    """Configure this process's environment for libguestfs (before creating a handle)."""
    a = accel or detect()
    os.environ.update(libguestfs_env(a))
    return a
