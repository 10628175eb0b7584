"""GRUB configuration parsing and editing (convert/linux/grub.py) and default-kernel selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.linux import grub
from pyv2v.v2v.convert.linux.bootconfig import set_default_kernel
from pyv2v.v2v.convert.linux.kernels import Kernel

CFG = """\
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
else
   set default="0"
fi
function load_video {
  insmod all_video
}
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-U' {
\tlinux\t/vmlinuz-6.5.0-1-amd64 root=/dev/sda2 ro
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-U' {
\tmenuentry 'Linux 6.5.0-1-amd64' $menuentry_id_option 'gnulinux-6.5.0-1-amd64-advanced-U' {
\t\tlinux\t/vmlinuz-6.5.0-1-amd64 root=/dev/sda2 ro
\t}
\tmenuentry 'Linux 6.1.0-9-amd64' $menuentry_id_option 'gnulinux-6.1.0-9-amd64-advanced-U' {
\t\tlinux\t/vmlinuz-6.1.0-9-amd64 root=/dev/sda2 ro
\t}
}
menuentry "No id here" {
\tlinux16 /boot/vmlinuz-4.0 root=/dev/sda2
}
menuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {
\tfwsetup
}
"""


def test_menu_entries() -> None:
    entries = grub.menu_entries(CFG)
    assert [e.kernel for e in entries] == ["vmlinuz-6.5.0-1-amd64", "vmlinuz-6.5.0-1-amd64",
                                           "vmlinuz-6.1.0-9-amd64", "vmlinuz-4.0", None]
    assert entries[2].indexes == (1, 1)
    assert entries[2].default_value() == "gnulinux-advanced-U>gnulinux-6.1.0-9-amd64-advanced-U"
    assert entries[3].titles == ("No id here",) and entries[3].default_value() == "No id here"


@pytest.mark.parametrize("value,kernel", [
    ("0", "vmlinuz-6.5.0-1-amd64"), ("1>1", "vmlinuz-6.1.0-9-amd64"), ("2", "vmlinuz-4.0"),
    ("gnulinux-advanced-U>gnulinux-6.1.0-9-amd64-advanced-U", "vmlinuz-6.1.0-9-amd64"),
    ("Advanced options for Debian GNU/Linux>Linux 6.1.0-9-amd64",
     "vmlinuz-6.1.0-9-amd64"),
    ("gnulinux-simple-U", "vmlinuz-6.5.0-1-amd64"),
])
def test_resolve_default_values(value: str, kernel: str) -> None:
    e = grub.resolve(grub.menu_entries(CFG), value)
    assert e is not None and e.kernel == kernel


def test_static_default_ignores_next_entry() -> None:
    assert grub.static_default(CFG) == "0"
    new = grub.set_static_default(CFG, "a>b")
    assert 'set default="${next_entry}"' in new and 'set default="a>b"' in new
    assert grub.static_default(new) == "a>b"


def test_grubenv_round_trip_is_1024_bytes() -> None:
    env = {"saved_entry": "x", "kernelopts": "root=/dev/vda2 ro"}
    block = grub.format_grubenv(env)
    assert len(block) == 1024 and block.startswith("# GRUB Environment Block\n")
    assert grub.parse_grubenv(block) == env
    with pytest.raises(ValueError):
        grub.format_grubenv({"k": "v" * 1100})


def test_legacy_menu() -> None:
    text = ("default 1\ntimeout 5\ntitle A\n\troot (hd0,0)\n\tkernel /vmlinuz-2 ro\n"
            "title B\n\tkernel /boot/vmlinuz-1 ro\n")
    assert grub.legacy_titles(text) == ["vmlinuz-2", "vmlinuz-1"]
    assert grub.legacy_default(text) == "1"
    assert grub.set_legacy_default(text, 0).startswith("default 0\n")
    assert grub.set_legacy_default("title A\n", 0).startswith("default=0\n")


def _kernel(version: str) -> Kernel:
    return Kernel(version, f"/boot/vmlinuz-{version}", frozenset(), frozenset())


def test_set_default_kernel_static(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/boot/grub/grub.cfg", CFG)
    set_default_kernel(g, _kernel("6.5.0-1-amd64"))       # already the default: untouched
    assert g.read_text("/boot/grub/grub.cfg") == CFG
    set_default_kernel(g, _kernel("6.1.0-9-amd64"))
    assert grub.static_default(g.read_text("/boot/grub/grub.cfg")) == \
        "gnulinux-advanced-U>gnulinux-6.1.0-9-amd64-advanced-U"


def test_set_default_kernel_saved_entry(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/boot/grub/grub.cfg", CFG.replace('set default="0"', 'set default="${saved_entry}"'))
    g.write("/boot/grub/grubenv", grub.format_grubenv({"saved_entry": "gnulinux-simple-U"}))
    set_default_kernel(g, _kernel("6.1.0-9-amd64"))
    env = grub.parse_grubenv(g.read_text("/boot/grub/grubenv"))
    assert env["saved_entry"] == "gnulinux-advanced-U>gnulinux-6.1.0-9-amd64-advanced-U"
    assert len(g.read("/boot/grub/grubenv")) == 1024


def test_set_default_kernel_without_an_entry_warns(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    g = FakeGuest(tmp_path)
    g.write("/boot/grub/grub.cfg", CFG)
    set_default_kernel(g, _kernel("9.9.9"))
    assert g.read_text("/boot/grub/grub.cfg") == CFG
    assert "no menu entry for vmlinuz-9.9.9" in capsys.readouterr().err
