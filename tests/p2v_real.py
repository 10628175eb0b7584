"""Real p2v → our v2v runs over the loopback sshd, for fault and load tests.

`conversion_server(tmp)` is `loopback.start_conversion_server` with a private PYV2V_TMPDIR (where
v2v pulls the source disk, so a test can watch the pull and check it is cleaned up); `env` adds
to its sessions' environment (e.g. VIRTIO_WIN for Windows sources).
`P2V.start(...)` runs the p2v CLI non-interactively (host key pinned) with a tag in its
environment (proc_helpers), collecting its output lines in a thread while the test watches.
`remote_procs(srv)` lists the server sessions' live processes (tagged by PYV2V_LOOPBACK).
`ThrottledDisk`: a "physical disk" whose reads are slow (an nbdkit rate filter behind nbdfuse),
so a test can act while the server is pulling it — throttling lives in the harness, not in p2v.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from proc_helpers import tag_env, tagged

from pyv2v import accel
from pyv2v_harness import demo, loopback


def conversion_server(tmp: Path, env: dict[str, str] | None = None
                      ) -> tuple[loopback.Server, Path]:
    pull = tmp / "v2v-tmp"
    pull.mkdir(mode=0o700)
    env = {"LIBGUESTFS_BACKEND": "direct", **accel.libguestfs_env(), "PYV2V_TMPDIR": str(pull),
           **(env or {})}
    bindir = loopback.v2v_bin_dir(tmp / "bin")
    return loopback.start(path=[str(bindir)] + loopback.DEFAULT_PATH, env=env), pull


def remote_procs(srv: loopback.Server) -> list[str]:
    return tagged(str(srv.dir), var="PYV2V_LOOPBACK")


def wait_until(pred: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class P2V:
    proc: subprocess.Popen[str]
    tag: str
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, srv: loopback.Server, disk: Path, outdir: Path, name: str) -> P2V:
        env, tag = tag_env()
        argv = demo.p2v_argv(srv, disk, outdir, name)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)
        run = cls(proc, tag)
        run.reader = threading.Thread(target=run._read, daemon=True)
        run.reader.start()
        return run

    def finish(self, timeout: float = 60) -> int:
        """Reap p2v (call only once it has exited) and collect the rest of its output."""
        rc = self.proc.wait(timeout)
        if self.reader is not None:
            self.reader.join(timeout)
        return rc

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def out(self) -> str:
        return "\n".join(self.lines)

    def saw(self, text: str) -> bool:
        return any(text in ln for ln in list(self.lines))

    def remote_dir(self) -> Path:
        found = [ln.split(": ", 1)[1] for ln in list(self.lines)
                 if "remote log directory: " in ln]
        assert found, self.out
        return Path(found[-1])

    def data_ssh_pids(self) -> list[int]:
        """The `ssh -R` data connection(s), whether they forward a TCP port or a socket."""
        return [int(p.split()[0]) for p in tagged(self.tag)
                if re.match(r"\d+ ssh ", p) and " -R " in p and " -N" in p]


def pulled_bytes(pull_dir: Path) -> int:
    """Bytes v2v has written so far into its local copy of the source disk(s)."""
    return sum(p.stat().st_blocks * 512 for p in pull_dir.glob("pyv2v-*/source*")
               if p.is_file())


def only_error_line(text: str, prog: str) -> str:
    """The one `PROG: error: …` line of an output (asserts there is exactly one)."""
    errs = [ln for ln in text.splitlines() if re.match(rf"^{prog}: error: ", ln)]
    assert len(errs) == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return errs[0]


class ThrottledDisk:
    """`path` reads `source` at `bits_per_s` (nbdkit rate filter, exposed as a file by nbdfuse)."""

    def __init__(self, source: Path, mount: Path, bits_per_s: str) -> None:
        mount.mkdir()
        self.mount = mount
        self.path = mount / "disk"
        self.proc = subprocess.Popen(
            ["nbdfuse", "-r", str(self.path), "--command", "nbdkit", "-s", "-r",
             "--filter=rate", "file", f"file={source}", f"rate={bits_per_s}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: self.path.exists() or self.proc.poll() is not None, 30,
                       "nbdfuse")
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        subprocess.run(["fusermount3", "-u", "-z", str(self.mount)], capture_output=True)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def listing(d: Path) -> list[str]:
    return sorted(os.listdir(d))
