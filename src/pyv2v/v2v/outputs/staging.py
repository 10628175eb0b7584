"""Staging of output files: a private directory, exclusive creation, publish on commit only.

`Staging(outdir, name)` makes a fresh private directory (mkdtemp, 0700) *inside* the output
directory, named ``.NAME-XXXXXXXX.pyv2v-partial`` (same filesystem, so publishing is a link or a
rename; unpredictable, so nothing can be planted in it).  Every file is created there with
O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600 (0700 for scripts).  `place` publishes one file under its
final name with link(2), which fails on any existing name (a symlink included) — unless the user
asked to overwrite, then rename(2) replaces the name itself, never a symlink's target.  `abort`
removes the directory and anything this run already published; it is registered with the cleanup
registry, so an error, Ctrl-C or SIGTERM leaves nothing that looks finished.

A conversion killed outright (kill -9, power loss: no cleanup ran) leaves its staging directory
behind.  It never blocks a later conversion (a new one gets its own); `remove_stale` deletes such
leftovers — a ``.NAME-XXXXXXXX.pyv2v-partial`` directory of ours that no live run holds (each
`Staging` keeps an flock(2) on its own directory, dropped by the kernel when v2v dies; the
name's claim covers the moment between mkdtemp and that lock).  `Staging` runs it for its own
NAME once it holds the claim (v2v-fleet's redelivered jobs, v2v rerun after a crash), a fleet
worker for its whole output directory at startup.

Two conversions to the same guest name in the same directory: each `Staging` first takes an
exclusive, non-blocking flock(2) on ``.NAME.pyv2v-lock`` there (held until commit or abort and
released by the kernel if v2v dies), so the second is refused at setup with one line; `place`'s
link(2) keeps the commit itself exclusive whatever happens.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile

from ... import process
from ...devnames import drive_letters
from ...errors import InternalError, V2VError
from ..types import SourceDisk

FILE_MODE = 0o600
SCRIPT_MODE = 0o700
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def disk_file_name(name: str, disk: SourceDisk) -> str:
    """NAME-sda, NAME-sdb …: named after the *source* disk index, as virt-v2v names them."""
    return f"{name}-sd{drive_letters(disk.index)}"


def check_writable_dir(path: str | None, flag: str = "-os") -> str:
    if not path:
        raise V2VError(f"this output needs {flag} DIRECTORY")
    if not os.path.isdir(path):
        raise V2VError(f"{flag} {path}: directory does not exist")
    if not os.access(path, os.W_OK | os.X_OK):
        raise V2VError(f"{flag} {path}: directory is not writable")
    return os.path.abspath(path)


def refuse_existing(name: str, outdir: str, finals: list[str], overwrite: bool) -> None:
    """An existing guest (any of its final names, even a dangling symlink) is never replaced
    unless the user asked for it."""
    if overwrite:
        return
    for f in finals:
        if os.path.lexists(f):
            raise V2VError(f"guest {name} already exists in {outdir} ({os.path.basename(f)}): "
                           "rename it with -on, or replace it with --overwrite")


def claim_name(final_dir: str, name: str) -> tuple[int, str]:
    """Lock ``.NAME.pyv2v-lock`` in `final_dir` for this run: (fd, path); refused if held."""
    path = os.path.join(final_dir, f".{name}.pyv2v-lock")
    for _ in range(10):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            raise V2VError(f"cannot create {path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise V2VError(f"{path} is not a regular file")
        except BlockingIOError:
            os.close(fd)
            raise V2VError(f"guest {name} is being converted into {final_dir} by another "
                           "conversion right now: choose another guest name") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            return fd, path
        os.close(fd)  # its holder removed it while we opened it: take the new one
    raise V2VError(f"cannot lock {path}: it keeps changing")


# mkdtemp's random part: 8 of [a-z0-9_], no "-": NAME is everything before the last "-".
STALE_RE = re.compile(r"\.(?P<name>.+)-[a-z0-9_]{8}\.pyv2v-partial")


def unclaim(claim: tuple[int, str]) -> None:
    """Give up a claim_name() claim: unlink the lock file while still holding it, then close."""
    fd, path = claim
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.close(fd)


def remove_stale(final_dir: str, claimed: str | None = None) -> list[str]:
    """Delete staging dirs left by dead conversions; return their paths.  Only directories owned
    by us and matching the staging name are touched, each only while its NAME's claim is held:
    by the caller for `claimed` (then only that NAME's), else taken here (skipped if busy)."""
    removed: list[str] = []
    try:
        entries = os.listdir(final_dir)
    except OSError:
        return removed
    for entry in entries:
        m = STALE_RE.fullmatch(entry)
        if not m or (claimed is not None and m["name"] != claimed):
            continue
        path = os.path.join(final_dir, entry)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        claim = None
        if claimed is None:
            try:
                claim = claim_name(final_dir, m["name"])
            except V2VError:
                continue  # a live conversion owns it
        try:
            dirfd = lock_dir(path)
            if dirfd is not None:   # else a live run holds it
                try:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
                finally:
                    os.close(dirfd)
        finally:
            if claim is not None:
                unclaim(claim)
    return removed


def lock_dir(path: str) -> int | None:
    """An fd holding an exclusive flock on directory `path`; None if another holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class Staging:
    """A private directory of files published under their final names only on `commit`."""

    def __init__(self, final_dir: str, name: str, overwrite: bool = False) -> None:
        self.final_dir = final_dir
        self.overwrite = overwrite
        self._claim: tuple[int, str] | None = claim_name(final_dir, name)
        try:
            remove_stale(final_dir, name)   # a dead run's leftovers of this guest
            self.dir = tempfile.mkdtemp(prefix=f".{name}-", suffix=".pyv2v-partial",
                                        dir=final_dir)
            self._dirfd = lock_dir(self.dir)   # ours while we live (remove_stale skips it)
        except OSError as e:
            self.release()
            raise V2VError(f"cannot create a staging directory in {final_dir}: "
                           f"{e.strerror}") from e
        self.pending: dict[str, str] = {}   # staged path → final path, not yet published
        self.placed: list[str] = []         # final paths this run published
        self._hook = process.on_cleanup(self.abort)

    def create(self, final: str, mode: int = FILE_MODE) -> str:
        """Create the staged (empty) file for `final`; return its path."""
        os.close(self._open(final, mode))
        return self._staged(final)

    def write_text(self, final: str, text: str, mode: int = FILE_MODE) -> str:
        """Write `final`'s content to its staged file; return the staged path."""
        fd = self._open(final, mode)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
        except OSError as e:
            raise V2VError(f"cannot write {final}: {e.strerror}") from e
        return self._staged(final)

    def _staged(self, final: str) -> str:
        return os.path.join(self.dir, os.path.basename(final))

    def _open(self, final: str, mode: int) -> int:
        if os.path.dirname(final) != self.final_dir:
            raise InternalError(f"{final} is not in the output directory {self.final_dir}")
        staged = self._staged(final)
        if staged in self.pending:
            raise InternalError(f"{final} staged twice")
        try:
            fd = os.open(staged, CREATE_FLAGS, mode)
            os.fchmod(fd, mode)
        except OSError as e:
            raise V2VError(f"cannot create {final}: {e.strerror}") from e
        self.pending[staged] = final
        return fd

    def place(self, staged: str, final: str) -> None:
        """Publish one staged file under its final name."""
        try:
            if self.overwrite:
                os.replace(staged, final)
            else:
                os.link(staged, final, follow_symlinks=False)
                os.unlink(staged)
        except FileExistsError:
            raise V2VError(f"{final} appeared while converting: not replaced "
                           "(use --overwrite to replace it)") from None
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EOPNOTSUPP) and not os.path.lexists(final):
                os.rename(staged, final)  # a filesystem without hard links
            else:
                raise V2VError(f"cannot publish {final}: {e.strerror}") from e
        self.pending.pop(staged, None)
        self.placed.append(final)

    def discard(self, staged: str) -> None:
        try:
            os.unlink(staged)
        except FileNotFoundError:
            pass
        self.pending.pop(staged, None)

    def commit(self) -> None:
        for staged, final in list(self.pending.items()):
            self.place(staged, final)
        os.rmdir(self.dir)
        self._unlock_dir()
        self.release()
        process.cancel_cleanup(self._hook)

    def abort(self) -> None:
        for final in self.placed:
            try:
                os.unlink(final)
            except FileNotFoundError:
                pass
        self.placed.clear()
        self.pending.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
        self._unlock_dir()
        self.release()
        process.cancel_cleanup(self._hook)

    def release(self) -> None:
        """Give up the guest name (unlink the lock file while still holding it, then close)."""
        if self._claim is not None:
            claim, self._claim = self._claim, None
            unclaim(claim)

    def _unlock_dir(self) -> None:
        """Drop the staging directory's lock (once it is removed)."""
        dirfd, self._dirfd = getattr(self, "_dirfd", None), None
        if dirfd is not None:
            os.close(dirfd)
