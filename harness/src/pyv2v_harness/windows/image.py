"""Build (once) and cache the phony Windows disk images, through libguestfs only.

`ensure_windows_image(name)` returns `$PYV2V_FIXTURE_CACHE/win-<name>-<key16>.raw` (default cache
/var/cache/pyv2v/fixtures), building it if missing: write the hives on the host (hive.py, from
registry.py's trees), then in one appliance: partition (MBR with the recipe's own disk signature +
active NTFS for BIOS; GPT with an
ESP and a basic-data NTFS for UEFI), mkfs, upload hives and layout.py's files, apply the recipe's
defect, trim.  The key hashes the recipe and this package's sources, so any change rebuilds.  A
build writes `.raw.tmp` under an fcntl lock and renames it into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pyv2v import accel, log
from pyv2v.errors import V2VError

from ..fixtures.builder import _locked as locked
from . import hive, layout, ntfsraw, registry
from .recipes import WinRecipe, windows_recipe

DEFAULT_CACHE = "/var/cache/pyv2v/fixtures"
BUILDER_VERSION = "1"
NTFS_GPT_GUID = uuid.UUID("8c1f3b8e-6d1a-4f3e-9b2c-5a4d3e2f1a0b")
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BASIC_DATA_TYPE = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
START_SECTOR = 2048
ESP_SECTORS = 100 * 2048


def cache_dir() -> Path:
    return Path(os.environ.get("PYV2V_FIXTURE_CACHE") or DEFAULT_CACHE)


def recipe_key(r: WinRecipe) -> str:
    h = hashlib.sha256(f"pyv2v-windows-fixture {BUILDER_VERSION}\n{r!r}\n".encode())
    for src in sorted(Path(__file__).parent.glob("*.py")):
        if src.name not in ("__main__.py", "virtio_win.py"):
            h.update(src.name.encode() + b"\0" + src.read_bytes())
    return h.hexdigest()


def windows_image_path(name: str) -> Path:
    r = windows_recipe(name)
    return cache_dir() / f"win-{r.name}-{recipe_key(r)[:16]}.raw"


def windows_manifest(image: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
    return data


def ensure_windows_image(name: str, *, rebuild: bool = False) -> Path:
    """The cached image for recipe `name`, built now if missing (or if `rebuild`)."""
    r = windows_recipe(name)
    final = windows_image_path(name)
    if final.exists() and not rebuild:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with locked(final.parent / "windows-build.lock", f"the {name} Windows fixture"):
        if final.exists() and not rebuild:
            return final
        tmp = final.with_name(final.name + ".tmp")
        tmp.unlink(missing_ok=True)
        start = time.monotonic()
        try:
            facts = build(r, tmp)
            facts["build_seconds"] = round(time.monotonic() - start, 1)
            os.chmod(tmp, 0o444)
            final.with_suffix(".json").write_text(
                json.dumps(facts, indent=2) + "\n", encoding="utf-8"
            )
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
    log.message(f"Built Windows fixture {name} in {facts['build_seconds']} s: {final}")
    return final


def mbr_signature(r: WinRecipe) -> int:
    """The recipe's own MBR disk signature (at 0x1B8; MountedDevices and the BCD name the
    partition by it): derived from the name, so every BIOS image has a different one."""
    digest = hashlib.sha256(f"pyv2v-windows-mbr-signature {r.name}".encode()).digest()
    return int.from_bytes(digest[:4], "little") or 1


def c_drive_value(r: WinRecipe) -> bytes:
    """MountedDevices' \\DosDevices\\C: for the Windows partition of this layout."""
    if r.partition_table == "gpt":
        return b"DMIO:ID:" + NTFS_GPT_GUID.bytes_le
    return struct.pack("<IQ", mbr_signature(r), START_SECTOR * 512)


def _write_hives(r: WinRecipe, d: Path) -> dict[str, Path]:
    hives = {"SOFTWARE": d / "SOFTWARE", "SYSTEM": d / "SYSTEM", "BCD": d / "BCD"}
    hive.build_hive(
        hives["SOFTWARE"],
        registry.software(r),
        "CMI-CreateHive{199DAFC2-6F16-4946-BF90-5A3FC3A60902}",
    )
    hive.build_hive(
        hives["SYSTEM"],
        registry.system(r, c_drive_value(r)),
        "CMI-CreateHive{2A7FB991-7BBE-4F9D-B91E-7CB51D4737F5}",
    )
    hive.build_hive(hives["BCD"], registry.bcd(), "NewStoreRoot")
    if r.bad == "corrupt-hive":
        data = bytearray(hives["SOFTWARE"].read_bytes())
        data[0x1000 : 0x1000 + 64] = b"\xde\xad\xbe\xef" * 16  # first hbin header and root
        hives["SOFTWARE"].write_bytes(bytes(data))
    return hives


def _upload_tree(g: Any, files: dict[str, bytes], d: Path) -> None:
    staged = d / "staged"
    for path, content in files.items():
        g.mkdir_p(os.path.dirname(path))
        staged.write_bytes(content)
        g.upload(str(staged), path)


def _partition(g: Any, r: WinRecipe) -> tuple[str, str | None]:
    """Partition /dev/sda; return (Windows partition, ESP or None)."""
    if r.partition_table == "gpt":
        g.part_init("/dev/sda", "gpt")
        g.part_add("/dev/sda", "p", START_SECTOR, START_SECTOR + ESP_SECTORS - 1)
        g.part_add("/dev/sda", "p", START_SECTOR + ESP_SECTORS, -34)
        g.part_set_gpt_type("/dev/sda", 1, ESP_TYPE)
        g.part_set_name("/dev/sda", 1, "EFI system partition")
        g.part_set_gpt_type("/dev/sda", 2, BASIC_DATA_TYPE)
        g.part_set_gpt_guid("/dev/sda", 2, str(NTFS_GPT_GUID).upper())
        g.part_set_name("/dev/sda", 2, "Basic data partition")
        g.mkfs("vfat", "/dev/sda1")
        return "/dev/sda2", "/dev/sda1"
    g.part_init("/dev/sda", "mbr")
    if r.bad == "bitlocker":  # "System Reserved" + the encrypted C:
        g.part_add("/dev/sda", "p", START_SECTOR, START_SECTOR + 100 * 2048 - 1)
        g.part_add("/dev/sda", "p", START_SECTOR + 100 * 2048, -2048)
    else:
        g.part_add("/dev/sda", "p", START_SECTOR, -2048)
    g.part_set_bootable("/dev/sda", 1, True)
    for n in range(1, len(g.part_list("/dev/sda")) + 1):
        g.part_set_mbr_id("/dev/sda", n, 0x07)
    g.pwrite_device("/dev/sda", struct.pack("<I", mbr_signature(r)), 0x1B8)
    return "/dev/sda1", None


def build(r: WinRecipe, image: Path) -> dict[str, Any]:
    import guestfs  # Debian python3-guestfs (system site-packages)

    os.environ.update(accel.libguestfs_env())
    os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
    log.message(f"Building the phony Windows guest {r.name} ({r.disk_mib} MiB)")
    with tempfile.TemporaryDirectory(prefix=f"pyv2v-win-{r.name}-") as tmp:
        d = Path(tmp)
        hives = _write_hives(r, d)
        g: Any = guestfs.GuestFS(python_return_dict=True)
        try:
            g.disk_create(str(image), "raw", r.disk_mib << 20)
            g.add_drive_opts(str(image), format="raw", cachemode="unsafe", discard="besteffort")
            g.launch()
            win, esp = _partition(g, r)
            g.mkfs("ntfs", win, label="System Reserved" if r.bad == "bitlocker" else "Windows")
            g.mount(win, "/")
            g.mkdir_p("/Windows/System32/config")
            g.mkdir_p("/Boot")
            g.upload(str(hives["BCD"]), "/Boot/BCD")
            _upload_tree(g, layout.bios_boot_files(), d)
            if r.bad != "bitlocker":
                g.upload(str(hives["SOFTWARE"]), "/Windows/System32/config/SOFTWARE")
                g.upload(str(hives["SYSTEM"]), "/Windows/System32/config/SYSTEM")
                _upload_tree(g, layout.windows_files(r.product_name), d)
            if r.bad in ("hibernated", "dirty"):
                g.write("/hiberfil.sys", b"HIBR" + b"\0" * (64 * 1024 - 4))
            g.fstrim("/")
            g.umount_all()
            if esp:
                g.mount(esp, "/")
                g.mkdir_p("/EFI/Microsoft/Boot")
                g.upload(str(hives["BCD"]), "/EFI/Microsoft/Boot/BCD")
                _upload_tree(g, layout.esp_files(), d)
                g.umount_all()
            if r.bad == "dirty":
                ntfsraw.set_ntfs_dirty(g, win)
            if r.bad == "bitlocker":
                g.zero_device("/dev/sda2")
                g.pwrite_device("/dev/sda2", ntfsraw.bitlocker_header(), 0)
                for at in ntfsraw.BITLOCKER_METADATA_OFFSETS:
                    g.pwrite_device("/dev/sda2", ntfsraw.bitlocker_metadata_block(), at)
            g.shutdown()
        except RuntimeError as e:
            raise V2VError(f"building the Windows fixture {r.name} failed: {e}") from e
        finally:
            g.close()
    return {
        "recipe": r.name,
        "key": recipe_key(r),
        "product_name": r.product_name,
        "major": r.major,
        "minor": r.minor,
        "build": r.build,
        "edition": r.edition,
        "installation_type": r.installation_type,
        "firmware": r.firmware,
        "partition_table": r.partition_table,
        "mbr_signature": f"{mbr_signature(r):08x}" if r.partition_table == "dos" else None,
        "hostname": r.hostname,
        "bad": r.bad,
        "windows_partition": win,
        "esp": esp,
        "static_ip": registry.STATIC_IP,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
