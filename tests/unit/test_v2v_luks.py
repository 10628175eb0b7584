"""--key / --keys-from-stdin parsing and LUKS unlocking (luks.py) against a fake libguestfs
handle: selectors by device, UUID and `all`, key files, stdin order, the one-line errors for a
missing or wrong key, and the passphrase kept out of reprs and libguestfs traces."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pyv2v.errors import UsageError, V2VError
from pyv2v.v2v import cli, luks

UUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


class FakeG:
    def __init__(self, secret: str = "s3cret pass") -> None:
        self.secret = secret
        self.trace = True
        self.opened: list[tuple[str, str]] = []
        self.trace_during_open: list[bool] = []

    # As libguestfs 1.48 lists them: list_filesystems leaves the LUKS partition out.
    types = {"/dev/sda1": "ext4", "/dev/sda2": "crypto_LUKS"}

    def list_filesystems(self) -> dict[str, str]:
        return {"/dev/sda1": "ext4"}

    def list_devices(self) -> list[str]:
        return ["/dev/sda"]

    def list_partitions(self) -> list[str]:
        return ["/dev/sda1", "/dev/sda2"]

    def vfs_type(self, dev: str) -> str:
        if dev not in self.types:
            raise RuntimeError(f"vfs_type: {dev}: no signature")
        return self.types[dev]

    def vfs_uuid(self, dev: str) -> str:
        return UUID.upper()

    def get_trace(self) -> bool:
        return self.trace

    def set_trace(self, on: bool) -> None:
        self.trace = on

    def cryptsetup_open(self, dev: str, key: str, name: str) -> None:
        self.trace_during_open.append(self.trace)
        if key != self.secret:
            raise RuntimeError(f"cryptsetup_open: {dev}: No key available with this passphrase")
        self.opened.append((dev, name))

    def lvm_scan(self, activate: bool) -> None:
        pass

    crypttab: list[str] | None = None
    mounted = ""

    def lvs(self) -> list[str]:
        return []

    def mount_ro(self, dev: str, mp: str) -> None:
        if not dev.startswith("/dev/mapper/"):
            raise RuntimeError("not a filesystem")
        self.mounted = dev

    def umount(self, mp: str) -> None:
        self.mounted = ""

    def is_file(self, path: str) -> bool:
        return self.crypttab is not None

    def read_lines(self, path: str) -> list[str]:
        return list(self.crypttab or [])

    def vg_activate_all(self, on: bool) -> None:
        pass

    def cryptsetup_close(self, mapper: str) -> None:
        self.opened = [(d, n) for d, n in self.opened if f"/dev/mapper/{n}" != mapper]


@pytest.mark.parametrize("selector", ["/dev/sda2", UUID, UUID.upper(), "all"])
def test_key_selectors_unlock(selector: str) -> None:
    g = FakeG()
    keys = luks.keys_from_args([f"{selector}:key:s3cret pass"], False)
    assert luks.unlock(g, keys) == [f"/dev/mapper/luks-{UUID}"]
    assert g.opened == [("/dev/sda2", f"luks-{UUID}")]
    assert g.trace_during_open == [False] and g.trace is True   # restored after


def test_key_file_and_secret_never_in_repr(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("s3cret pass\n")
    keys = luks.keys_from_args([f"/dev/sda2:file:{f}"], False)
    assert "s3cret" not in repr(keys) and "s3cret" not in repr(keys.given[0])
    g = FakeG()
    luks.unlock(g, keys)
    assert g.opened


def test_keys_from_stdin_one_per_device() -> None:
    keys = luks.keys_from_args([], True)
    keys.read_stdin(io.StringIO("s3cret pass\n"))
    g = FakeG()
    luks.unlock(g, keys)
    assert g.opened and "s3cret" not in repr(keys)


def test_missing_key_names_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a terminal on stdin there is nobody to ask: a one-line error, no prompt."""
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    monkeypatch.setattr("getpass.getpass", lambda prompt: pytest.fail("prompted"))
    with pytest.raises(V2VError, match=r"/dev/sda2 is LUKS-encrypted .*--key /dev/sda2:key:"):
        luks.unlock(FakeG(), luks.Keys())


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("typed,ok", [(["s3cret pass"], True), (["x", "", "s3cret pass"], True),
                                      (["x", "y", "z", "s3cret pass"], False)])
def test_prompts_on_a_terminal(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str], typed: list[str],
                               ok: bool) -> None:
    """stdin a terminal and no key: asked as virt-v2v asks, three tries (the real prompt on a
    pty: tests/e2e/test_v2v_linux_luks.py)."""
    monkeypatch.setattr("sys.stdin", _Tty())
    answers, prompts = iter(typed), []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(answers))
    g = FakeG()
    if ok:
        assert luks.unlock(g, luks.Keys()) == [f"/dev/mapper/luks-{UUID}"]
    else:
        with pytest.raises(V2VError, match="none of the 3 passphrases entered unlocks it"):
            luks.unlock(g, luks.Keys())
    assert prompts == ['Enter key or passphrase ("/dev/sda2"): '] * min(len(typed), 3)
    assert "s3cret" not in capsys.readouterr().err


def test_wrong_key() -> None:
    with pytest.raises(V2VError, match="does not unlock it") as e:
        luks.unlock(FakeG(), luks.keys_from_args(["all:key:nope"], False))
    assert "nope" not in str(e.value)


@pytest.mark.parametrize("spec,needle", [
    ("/dev/sda2", "expected SELECTOR:key:PASSPHRASE"),
    ("/dev/sda2:key:", "empty passphrase"),
    ("/dev/sda2:file:/nonexistent/key", "No such file"),
    ("/dev/sda2:clevis", "Clevis"),
])
def test_bad_key_specs(spec: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        luks.parse_key(spec)


def test_cli_builds_the_keys() -> None:
    plan = cli.make_plan(cli.parse(["-i", "disk", "x.img", "-o", "null",
                                    "--key", "all:key:a:b:c", "--keys-from-stdin"]))
    assert plan.keys.from_stdin and plan.keys.given[0].passphrase == "a:b:c"
    assert "a:b:c" not in repr(plan)


@pytest.mark.parametrize("source", [f"UUID={UUID}", f"/dev/disk/by-uuid/{UUID}", "/dev/sda2"])
def test_reopened_under_the_crypttab_name(source: str) -> None:
    g = FakeG()
    g.crypttab = ["# <target> <source> <key> <options>", f"sda2_crypt {source} none luks"]
    assert luks.unlock(g, luks.keys_from_args(["all:key:s3cret pass"], False)) == [
        "/dev/mapper/sda2_crypt"]
    assert g.opened == [("/dev/sda2", "sda2_crypt")] and g.trace is True
