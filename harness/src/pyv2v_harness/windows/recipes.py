"""The phony Windows guests: one frozen `WinRecipe` per name (data only; image.py builds them).

Good recipes inspect as the Windows they claim; bad ones (`bad` set) are the refusals a converter
must produce: hibernated, Fast Startup/dirty NTFS, BitLocker, a corrupt SOFTWARE hive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class WinRecipe:
    name: str
    product_name: str
    current_version: str  # SOFTWARE ...\CurrentVersion "CurrentVersion" (6.1, 6.3)
    major: int  # what inspection must report
    minor: int
    build: str  # CurrentBuildNumber
    edition: str  # EditionID
    installation_type: str  # Server | Client
    firmware: str = "bios"  # bios (MBR, one NTFS partition) | uefi (GPT, ESP + NTFS)
    hostname: str = "WIN-PHONY"
    display_version: str = ""  # "21H2" on 10+
    bad: str | None = None  # hibernated | dirty | bitlocker | corrupt-hive
    disk_mib: int = 256

    @property
    def has_major_minor_values(self) -> bool:
        """Windows 10+ hives carry CurrentMajor/MinorVersionNumber; older ones only 6.x."""
        return self.major >= 10

    @property
    def partition_table(self) -> str:
        return "gpt" if self.firmware == "uefi" else "dos"

    @property
    def arch(self) -> str:
        return "x86_64"


WIN2022 = WinRecipe(
    "win2022",
    "Windows Server 2022 Standard",
    "6.3",
    10,
    0,
    "20348",
    "ServerStandard",
    "Server",
    hostname="WIN2022-PHONY",
    display_version="21H2",
)
WIN10 = WinRecipe(
    "win10",
    "Windows 10 Pro",
    "6.3",
    10,
    0,
    "19045",
    "Professional",
    "Client",
    hostname="WIN10-PHONY",
    display_version="22H2",
)
WIN2008R2 = WinRecipe(
    "win2008r2",
    "Windows Server 2008 R2 Standard",
    "6.1",
    6,
    1,
    "7601",
    "ServerStandard",
    "Server",
    hostname="WIN2008R2-PHONY",
)

RECIPES: dict[str, WinRecipe] = {
    r.name: r
    for r in (
        WIN2022,
        WIN10,
        WIN2008R2,
        replace(WIN2022, name="win2022-uefi", firmware="uefi", hostname="WIN2022-UEFI"),
        replace(WIN2022, name="win-hibernated", bad="hibernated"),
        replace(WIN10, name="win-dirty", bad="dirty"),
        replace(WIN2022, name="win-bitlocker", bad="bitlocker"),
        replace(WIN2022, name="win-corrupt-hive", bad="corrupt-hive"),
    )
}
GOOD_RECIPES = tuple(n for n, r in RECIPES.items() if r.bad is None)
BAD_RECIPES = tuple(n for n, r in RECIPES.items() if r.bad is not None)


def windows_recipe(name: str) -> WinRecipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(
            f"unknown Windows fixture {name!r} (known: {', '.join(RECIPES)})"
        ) from None
