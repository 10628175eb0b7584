"""The expensive part of the media, built once per input set and cached: a Debian live root
filesystem (debootstrap + packages + p2v's Python dependencies), packed as ONE zstd initramfs
that the kernel unpacks into its tmpfs root and runs systemd from.  ISO and PXE boot the same
two files.

pyv2v's own code, the systemd units and the baked configuration are NOT in it: assemble.py adds
them as a small layer to every media build, so a change to p2v never rebuilds the base.
Cached under $PYV2V_MEDIA_CACHE (default /var/cache/pyv2v/media) as base-<key16>/ holding
vmlinuz, initrd.zst, files.sha256 (every file of the tree, to compare two builds) and
manifest.json.  The key hashes the mirror's InRelease (= package versions), the package list,
the Python dependencies and RECIPE_VERSION (bump it when _build changes); mtimes are clamped
to the InRelease date (SOURCE_DATE_EPOCH), the archive is sorted, inodes are renumbered.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import log, process
from ..errors import V2VError
from . import aptsource, imagefiles, pack, payload

SUITE = "bookworm"
RECIPE_VERSION = 2  # bump when _build changes what it makes
DEFAULT_CACHE = "/var/cache/pyv2v/media"
BOOTSTRAP = ["systemd-sysv", "udev", "kmod"]
# main + the archive area Debian (since bookworm) puts the redistributable firmware in
COMPONENTS = ["main", "non-free-firmware"]
# NIC and storage-controller firmware a server's drivers load at boot (Broadcom NetXtreme
# II/bnx2x, QLogic FC/iSCSI/FCoE HBAs and NICs, Realtek, and firmware-misc-nonfree: Intel
# ice DDP, Broadcom tg3 TSO, Adaptec aic94xx, Mellanox/Chelsio...).
FIRMWARE = [
    "firmware-linux-free",
    "firmware-bnx2",
    "firmware-bnx2x",
    "firmware-qlogic",
    "firmware-realtek",
    "firmware-netxen",
    "firmware-myricom",
    "firmware-misc-nonfree",
]
# The live system: kernel + firmware, networking, p2v's run-time needs.
PACKAGES = [
    "linux-image-amd64",
    *FIRMWARE,
    "python3",
    "python3-lxml",
    "openssh-client",
    "nbdkit",
    "iproute2",
    "systemd-resolved",
    "ca-certificates",
    "kbd",
    "console-data",
    "procps",
    "less",
]
# Module trees a conversion never needs (sound, GPUs beyond the firmware framebuffer, radios).
DROP_MODULES = [
    "sound",
    "drivers/gpu/drm/amd",
    "drivers/gpu/drm/radeon",
    "drivers/gpu/drm/nouveau",
    "drivers/gpu/drm/i915",
    "drivers/media",
    "drivers/net/wireless",
    "net/wireless",
    "net/mac80211",
    "drivers/bluetooth",
    "net/bluetooth",
    "drivers/staging",
    "drivers/iio",
    "drivers/infiniband",
]
DROP_PATHS = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log",
    "var/cache/debconf",
    "var/cache/ldconfig",
    "var/lib/systemd/random-seed",
    "boot",
    # firmware for the hardware whose drivers DROP_MODULES removed (GPUs, radios, sound)
    "usr/lib/firmware/nvidia",
    "usr/lib/firmware/i915",
    "usr/lib/firmware/rtlwifi",
    "usr/lib/firmware/rtw88",
    "usr/lib/firmware/rtw89",
    "usr/lib/firmware/rtl_bt",
    "usr/lib/firmware/mediatek",
]
CHROOT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C",
    "LANG": "C",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}
TIMEOUT = 3600.0


@dataclass(frozen=True)
class Base:
    dir: Path
    kernel: Path
    initrd: Path
    manifest: dict[str, object]


def cache_dir() -> Path:
    return Path(os.environ.get("PYV2V_MEDIA_CACHE") or DEFAULT_CACHE)


def recipe() -> dict[str, object]:
    """Every input of the base image (its hash is the cache key)."""
    mirror = aptsource.find_mirror(SUITE)
    release, epoch = aptsource.release_digest(mirror, SUITE)
    return {
        "suite": SUITE,
        "mirror": mirror,
        "release": release,
        "epoch": epoch,
        "bootstrap": BOOTSTRAP,
        "packages": PACKAGES,
        "drop_modules": DROP_MODULES,
        "python_deps": payload.deps_digest(),
        "recipe_version": RECIPE_VERSION,
        "drop_paths": DROP_PATHS,
        "components": COMPONENTS,
    }


def key_of(rec: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.message("Waiting for another media build")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_base(*, rebuild: bool = False) -> Base:
    """The cached base (kernel + root initramfs) for the current inputs, built if missing."""
    if os.geteuid() != 0:
        raise V2VError("building p2v media needs root (debootstrap, chroot)")
    rec = recipe()
    key = key_of(rec)
    cache = cache_dir()
    final = cache / f"base-{key[:16]}"
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "build.lock"):
        if not (final / "manifest.json").exists() or rebuild:
            tmp = cache / f"base-{key[:16]}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            start = time.monotonic()
            try:
                facts = _build(rec, tmp, cache)
                facts.update(recipe=rec, key=key, build_seconds=round(time.monotonic() - start, 1))
                (tmp / "manifest.json").write_text(json.dumps(facts, indent=2) + "\n")
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log.message(f"Built the p2v live system in {facts['build_seconds']} s: {final}")
    manifest = json.loads((final / "manifest.json").read_text())
    return Base(final, final / "vmlinuz", final / "initrd.zst", manifest)


def _run_chroot(root: str, argv: list[str], timeout: float = TIMEOUT) -> process.Result:
    return process.run(["chroot", root, *argv], env=CHROOT_ENV, timeout=timeout)


def _remove_tree(root: str) -> None:
    """rmtree the staging root, unless something is still mounted below it (a bind mount of
    the host's /dev must never be deleted through)."""
    with open("/proc/self/mounts") as f:
        busy = [ln.split()[1] for ln in f if ln.split()[1].startswith(root + "/")]
    if busy:
        log.warning(f"not removing {root}: still mounted: {', '.join(busy)}")
        return
    shutil.rmtree(root, ignore_errors=True)


def _build(rec: dict[str, object], out: Path, cache: Path) -> dict[str, object]:
    mirror, epoch = str(rec["mirror"]), int(str(rec["epoch"]))
    debs = cache / "debs"
    debs.mkdir(exist_ok=True)
    with ExitStack() as stack:
        root = tempfile.mkdtemp(prefix="pyv2v-media-", dir=cache)
        stack.callback(_remove_tree, root)
        mounts = stack.enter_context(ExitStack())  # closed (unmounted) before the rmtree
        log.message(f"debootstrap {SUITE} from {mirror}")
        process.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--components={','.join(COMPONENTS)}",
                f"--include={','.join(BOOTSTRAP)}",
                f"--cache-dir={debs}",
                SUITE,
                root,
                mirror,
            ],
            timeout=TIMEOUT,
            env={"LC_ALL": "C"},
        )
        for src, dst, opts in (
            ("proc", "proc", ["-t", "proc"]),
            ("/sys", "sys", ["--bind"]),
            ("/dev", "dev", ["--bind"]),
            ("/dev/pts", "dev/pts", ["--bind"]),
            (str(debs), "var/cache/apt/archives", ["--bind"]),
        ):
            process.run(["mount", *opts, src, f"{root}/{dst}"])
            mounts.callback(process.run, ["umount", "-l", f"{root}/{dst}"], check=False)
        with open(f"{root}/usr/sbin/policy-rc.d", "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(f"{root}/usr/sbin/policy-rc.d", 0o755)
        # the kernel's own initramfs is never used: the whole root is ours
        _run_chroot(
            root, ["dpkg-divert", "--local", "--rename", "--add", "/usr/sbin/update-initramfs"]
        )
        os.symlink("/bin/true", f"{root}/usr/sbin/update-initramfs")
        log.message(f"Installing {', '.join(PACKAGES)}")
        _run_chroot(root, ["apt-get", "-q", "update"])
        _run_chroot(root, ["apt-get", "-q", "-y", "--no-install-recommends", "install", *PACKAGES])
        kver = _run_chroot(root, ["linux-version", "list"]).out.split()[-1]
        shutil.copyfile(f"{root}/boot/vmlinuz-{kver}", out / "vmlinuz")
        pyver = _run_chroot(
            root, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        ).out.strip()
        site = f"/usr/local/lib/python{pyver}/dist-packages"
        dists = payload.install_deps(root + site)
        payload.install_pyv2v(root + site)  # for the checks only: the media add the current
        imagefiles.write_all(root)  # code and units as a layer (assemble.py)
        log.message("Checking the p2v client inside the image")
        _run_chroot(root, ["python3", "-c", "import pyv2v.p2v.cli, pyv2v.p2v.tui.app, lxml"])
        version = _run_chroot(root, ["p2v", "--version"]).out.strip()
        probe = process.run(
            ["chroot", root, "python3", "-c", "import pyv2v.v2v"],
            env=CHROOT_ENV,
            timeout=60,
            check=False,
        )
        if probe.rc == 0:
            raise V2VError("internal: the v2v server stack leaked into the p2v image")
        shutil.rmtree(root + site + "/pyv2v")
        imagefiles.remove_all(root)
        _run_chroot(
            root,
            [
                "python3",
                "-m",
                "compileall",
                "-q",
                "-j0",
                "--invalidation-mode",
                "unchecked-hash",
                site,
                f"/usr/lib/python{pyver}",
            ],
        )
        Path(f"{root}/usr/sbin/update-initramfs").unlink(missing_ok=True)
        _run_chroot(
            root, ["dpkg-divert", "--local", "--rename", "--remove", "/usr/sbin/update-initramfs"]
        )
        os.unlink(f"{root}/usr/sbin/policy-rc.d")
        mounts.close()  # unmount before trimming and packing
        pack.trim(root, kver, DROP_PATHS, DROP_MODULES)
        process.run(["depmod", "-b", root, kver])
        os.symlink("/lib/systemd/systemd", f"{root}/init")
        with open(f"{root}/etc/machine-id", "w"):
            pass
        files = pack.pack(root, out / "initrd.zst", out / "files.sha256", epoch)
        packages = pack.installed(root)
    return {
        "kernel": kver,
        "python": pyver,
        "site_packages": site,
        "p2v": version,
        "distributions": dists,
        "packages": packages,
        "files": files,
        "initrd_bytes": (out / "initrd.zst").stat().st_size,
        "kernel_bytes": (out / "vmlinuz").stat().st_size,
    }
