"""Phony Windows guests and a fake virtio-win for tests (issue 11): no real Windows needed.

`ensure_windows_image("win2022")` returns a cached raw disk whose NTFS holds the Windows layout
and real SOFTWARE/SYSTEM hives (written by hive.py, filled by hivex); libguestfs inspection sees
it as that Windows.  `ensure_virtio_win()` gives a virtio-win tree or ISO with the real layout.
The interface is described in /work/shared/windows-fixtures.md (D2's converter tests use it).
"""

from .image import cache_dir, ensure_windows_image, windows_image_path, windows_manifest
from .recipes import BAD_RECIPES, GOOD_RECIPES, RECIPES, WinRecipe, windows_recipe

__all__ = [
    "BAD_RECIPES",
    "GOOD_RECIPES",
    "RECIPES",
    "WinRecipe",
    "cache_dir",
    "ensure_windows_image",
    "windows_image_path",
    "windows_manifest",
    "windows_recipe",
]
