"""LUKS-encrypted source devices: `--key` / `--keys-from-stdin` (virt-v2v's syntax) and
unlocking them in the appliance before inspection.

    --key SELECTOR:key:PASSPHRASE     SELECTOR: a device (/dev/sda2), a LUKS UUID, or `all`
    --key SELECTOR:file:FILENAME      the passphrase is FILENAME's content (one trailing
                                      newline removed, as cryptsetup --key-file does not)
    --keys-from-stdin                 one passphrase per line on stdin, for the encrypted
                                      devices no --key selects, in device order

A device no key selects is asked for on the terminal when stdin is one (virt-v2v's prompt
`Enter key or passphrase ("/dev/sda2"):`, no echo, up to three tries); without a terminal that is
a one-line error naming --key.

A passphrase travels only through the libguestfs API (its protocol socket: guestfsd hands it to
cryptsetup on a pipe), never in a child's argv or a log: libguestfs call tracing (-x) is switched
off around the unlock, and the objects holding it print as "<hidden>".  Each device is opened as
`luks-<UUID>` and then, if the guest's /etc/crypttab names it otherwise (Debian: sda5_crypt),
reopened under that name: Debian's initramfs hook looks the root's crypttab entry up by the name
of the open mapping when the converter rebuilds the initramfs.
"""

from __future__ import annotations

import getpass
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .. import log
from ..errors import UsageError, V2VError

PROMPT_TRIES = 3
_KEY_RE = re.compile(r"^([^:]+):(key|file|clevis)(?::(.*))?$", re.S)


@dataclass(frozen=True)
class LuksKey:
    selector: str                              # /dev/…, a UUID, or "all"
    passphrase: str = field(repr=False)

    def selects(self, dev: str, uuid: str) -> bool:
        return self.selector in ("all", dev) or (bool(uuid) and self.selector.lower() == uuid)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """`argv` with every `--key SELECTOR:key:PASSPHRASE` passphrase replaced by `***`, for
    anything that records a command line (the fleet's job store)."""
    out: list[str] = []
    after_key = False
    for a in argv:
        inline = a.startswith("--key=")
        if after_key or inline:
            m = _KEY_RE.match(a[len("--key="):] if inline else a)
            if m and m.group(2) == "key":
                a = ("--key=" if inline else "") + f"{m.group(1)}:key:***"
        after_key = a == "--key"
        out.append(a)
    return out


def parse_key(spec: str) -> LuksKey:
    """One --key argument → LuksKey (UsageError naming the form on a malformed one)."""
    m = _KEY_RE.match(spec)
    if not m or (m.group(2) != "clevis" and m.group(3) is None):
        raise UsageError("--key: expected SELECTOR:key:PASSPHRASE or SELECTOR:file:FILENAME "
                         "(SELECTOR: a device such as /dev/sda2, a LUKS UUID, or all)")
    selector, kind, value = m.group(1), m.group(2), m.group(3) or ""
    if kind == "clevis":
        raise UsageError(f"--key {selector}:clevis: network-bound (Clevis/Tang) unlocking is "
                         "not supported by pyv2v")
    if kind == "file":
        try:
            with open(value, encoding="utf-8") as f:
                value = f.read()
        except OSError as e:
            raise UsageError(f"--key {selector}:file:{value}: {e.strerror}") from e
        value = value[:-1] if value.endswith("\n") else value
    if not value:
        raise UsageError(f"--key {selector}: empty passphrase")
    return LuksKey(selector, value)


@dataclass
class Keys:
    """The keys of one conversion: --key arguments plus lines read from stdin when asked."""

    given: tuple[LuksKey, ...] = ()
    from_stdin: bool = False
    _stdin: list[str] = field(default_factory=list, repr=False)

    def read_stdin(self, stream: IO[str]) -> None:
        if self.from_stdin:
            self._stdin = [ln.rstrip("\r\n") for ln in stream if ln.rstrip("\r\n")]

    def candidates(self, dev: str, uuid: str) -> list[str]:
        """Passphrases to try on `dev`: the --key ones selecting it, else the next stdin line."""
        chosen = [k.passphrase for k in self.given if k.selects(dev, uuid)]
        if not chosen and self._stdin:
            chosen = [self._stdin.pop(0)]
        return chosen


def encrypted_devices(g: Any) -> list[str]:
    """The LUKS devices: whole disks, partitions and logical volumes probed one by one —
    libguestfs' list_filesystems leaves out what blkid calls a crypto device (seen with
    libguestfs 1.48 on debian11-luks: only /boot was listed, so nothing was unlocked)."""
    found = {dev for dev, fs in g.list_filesystems().items() if fs == "crypto_LUKS"}
    for dev in {*g.list_devices(), *g.list_partitions(), *g.lvs()} - found:
        try:
            if g.vfs_type(dev) == "crypto_LUKS":
                found.add(dev)
        except RuntimeError:        # no signature at all (an extended partition, a blank disk)
            continue
    return sorted(found)


def _open(g: Any, dev: str, passphrase: str, name: str) -> bool:
    tracing = bool(g.get_trace())
    g.set_trace(False)            # the call's arguments would be printed with the passphrase
    try:
        g.cryptsetup_open(dev, passphrase, name)
        return True
    except RuntimeError as e:
        log.debug(f"{dev}: unlock failed: {str(e).replace(passphrase, '<hidden>')}")
        return False
    finally:
        g.set_trace(tracing)


def crypttab_names(g: Any, candidates: list[str]) -> dict[str, str]:
    """The guest's /etc/crypttab (on whichever candidate filesystem holds it, mounted read-only
    for a moment): source (UUID in lower case, or a device path) → target name."""
    for fs in candidates:
        try:
            g.mount_ro(fs, "/")
        except RuntimeError:
            continue
        try:
            if not g.is_file("/etc/crypttab"):
                continue
            names = {}
            for line in g.read_lines("/etc/crypttab"):
                f = line.split()
                if len(f) >= 2 and not f[0].startswith("#"):
                    src = f[1].removeprefix("/dev/disk/by-uuid/")
                    names[src.removeprefix("UUID=").lower()] = f[0]
            return names
        finally:
            g.umount("/")
    return {}


def _rename_as_crypttab(g: Any, opened: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    """Reopen each device under the name the guest's crypttab gives it: the guest's initramfs
    hook (cryptroot) finds the root's crypttab entry by the name of the open mapping."""
    names = crypttab_names(g, [f"/dev/mapper/{n}" for n, _, _ in opened.values()]
                           + list(g.lvs()))
    wanted = {dev: names.get(uuid) or names.get(dev) or name
              for dev, (name, uuid, _) in opened.items()}
    if all(wanted[dev] == name for dev, (name, _, _) in opened.items()):
        return {dev: name for dev, (name, _, _) in opened.items()}
    g.vg_activate_all(False)
    for dev, (name, _uuid, passphrase) in opened.items():
        if wanted[dev] != name:
            g.cryptsetup_close(f"/dev/mapper/{name}")
            if not _open(g, dev, passphrase, wanted[dev]):
                raise V2VError(f"{dev}: could not reopen it as {wanted[dev]} (its crypttab name)")
    g.lvm_scan(True)
    return wanted


def unlock(g: Any, keys: Keys) -> list[str]:
    """Open every LUKS device of the source under its crypttab name; return the mapped devices.
    Raises V2VError naming --key for a device without a key, and for a key that does not open
    it."""
    opened: dict[str, tuple[str, str, str]] = {}     # device → (map name, uuid, passphrase)
    for dev in encrypted_devices(g):
        uuid = str(g.vfs_uuid(dev)).lower()
        tries = keys.candidates(dev, uuid)
        name = f"luks-{uuid}" if uuid else "luks-" + dev.rsplit("/", 1)[-1]
        if not tries and not keys.from_stdin and _interactive():
            opened[dev] = (name, uuid, _prompt_until_open(g, dev, name))
            continue
        if not tries:
            raise V2VError(f"{dev} is LUKS-encrypted (UUID {uuid}): give its passphrase with "
                           f"--key {dev}:key:PASSPHRASE, --key {dev}:file:FILE or "
                           "--keys-from-stdin")
        good = next((p for p in tries if _open(g, dev, p, name)), None)
        if good is None:
            raise V2VError(f"{dev} (LUKS UUID {uuid}): the passphrase given by --key or "
                           "--keys-from-stdin does not unlock it")
        opened[dev] = (name, uuid, good)
    if not opened:
        return []
    g.lvm_scan(True)              # volume groups inside the encrypted devices
    final = _rename_as_crypttab(g, opened)
    for dev, name in final.items():
        log.message(f"Unlocked the LUKS device {dev} as /dev/mapper/{name}")
    return [f"/dev/mapper/{name}" for name in final.values()]


def _interactive() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:            # stdin closed
        return False


def _prompt_until_open(g: Any, dev: str, name: str) -> str:
    """Ask on the terminal (no echo, as virt-v2v) until a passphrase opens `dev`."""
    for attempt in range(PROMPT_TRIES):
        try:
            passphrase = getpass.getpass(f'Enter key or passphrase ("{dev}"): ')
        except EOFError:
            raise V2VError(f"{dev}: no passphrase entered") from None
        if passphrase and _open(g, dev, passphrase, name):
            return passphrase
        if attempt + 1 < PROMPT_TRIES:
            print(f"{dev}: that passphrase does not unlock it", file=sys.stderr, flush=True)
    raise V2VError(f"{dev}: none of the {PROMPT_TRIES} passphrases entered unlocks it")


def keys_from_args(specs: Sequence[str], from_stdin: bool) -> Keys:
    return Keys(given=tuple(parse_key(s) for s in specs), from_stdin=from_stdin)
