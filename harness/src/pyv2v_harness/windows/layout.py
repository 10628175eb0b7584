"""The files of a phony Windows guest: which paths exist and their placeholder bytes.

Executables are minimal PE32+ (x86-64) headers so that `file` (and libguestfs'
file_architecture, which inspection runs on cmd.exe) see a 64-bit Windows binary.
"""

from __future__ import annotations

import struct

from .registry import DRIVER_FILES

DRIVER_STORE = "/Windows/System32/DriverStore/FileRepository/disk.inf_amd64_a0c3bc0b4f3c3b55"


def pe64(kind: str = "console", dll: bool = False) -> bytes:
    """A minimal PE32+ image header for x86-64 (no sections): enough for `file`."""
    subsystem = {"console": 3, "gui": 2, "native": 1, "efi": 10}[kind]
    dos = b"MZ" + b"\0" * 58 + struct.pack("<I", 0x40)
    characteristics = 0x0022 | (0x2000 if dll else 0)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 0, 0x5F5E0F00, 0, 0, 0xF0, characteristics)
    opt = bytearray(0xF0)
    struct.pack_into("<H", opt, 0, 0x20B)  # PE32+
    struct.pack_into("<Q", opt, 24, 0x140000000)  # ImageBase
    struct.pack_into("<II", opt, 32, 0x1000, 0x200)  # section / file alignment
    struct.pack_into("<HH", opt, 40, 10, 0)  # OS version
    struct.pack_into("<HH", opt, 48, 10, 0)  # subsystem version
    struct.pack_into("<II", opt, 56, 0x1000, 0x400)  # SizeOfImage, SizeOfHeaders
    struct.pack_into("<HH", opt, 68, subsystem, 0x8160)
    struct.pack_into("<I", opt, 108, 16)  # NumberOfRvaAndSizes
    return (dos + coff + bytes(opt)).ljust(0x400, b"\0")


def placeholder(path: str) -> bytes:
    return f"pyv2v phony Windows file: {path}\r\n".encode()


def windows_files(product: str) -> dict[str, bytes]:
    """Guest path (on C:) -> content, besides the hives and the boot files."""
    files: dict[str, bytes] = {
        "/Windows/System32/cmd.exe": pe64(),
        "/Windows/System32/ntoskrnl.exe": pe64("native"),
        "/Windows/System32/hal.dll": pe64("native", dll=True),
        "/Windows/System32/winload.exe": pe64("native"),
        "/Windows/System32/pnputil.exe": pe64(),
        "/Windows/System32/reg.exe": pe64(),
        "/Windows/System32/netsh.exe": pe64(),
        "/Windows/System32/msiexec.exe": pe64("gui"),
        "/Windows/regedit.exe": pe64("gui"),
        "/Windows/explorer.exe": pe64("gui"),
        "/Windows/inf/disk.inf": placeholder("disk.inf"),
        f"{DRIVER_STORE}/disk.inf": placeholder("disk.inf"),
        f"{DRIVER_STORE}/disk.sys": pe64("native"),
        "/Windows/Temp/.keep": b"",
        "/Program Files/VMware/VMware Tools/vmtoolsd.exe": pe64("gui"),
        "/Program Files/VMware/VMware Tools/VMwareToolboxCmd.exe": pe64(),
        "/Program Files/7-Zip/7z.exe": pe64(),
        "/Program Files/7-Zip/Uninstall.exe": pe64("gui"),
        "/Users/Administrator/Desktop/readme.txt": placeholder(product),
    }
    for name in DRIVER_FILES:
        files[f"/Windows/System32/drivers/{name}.sys"] = pe64("native")
    return files


def bios_boot_files() -> dict[str, bytes]:
    """On the Windows partition of a BIOS guest, beside /Boot/BCD (a hive, written apart)."""
    return {
        "/bootmgr": placeholder("bootmgr"),
        "/Boot/en-US/bootmgr.exe.mui": placeholder("bootmgr.exe.mui"),
    }


def esp_files() -> dict[str, bytes]:
    """On the ESP of a UEFI guest, beside /EFI/Microsoft/Boot/BCD."""
    return {
        "/EFI/Microsoft/Boot/bootmgfw.efi": pe64("efi"),
        "/EFI/Microsoft/Boot/bootmgr.efi": pe64("efi"),
        "/EFI/Boot/bootx64.efi": pe64("efi"),
    }
