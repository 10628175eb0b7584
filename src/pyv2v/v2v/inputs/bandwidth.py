"""--bandwidth on the input side: a network source read through nbdkit's rate filter.

As in virt-v2v, `--bandwidth BPS` is in bits per second and `--bandwidth-file FILE` holds a
rate (same format) that nbdkit re-reads while the conversion runs.  An input that reads over a
network (a non-raw NBD disk of `-i libvirtxml`; raw ones, a p2v client's disks, are paced by
the server's own pull, v2v/ratelimit.py, which keeps resume and verification) calls
`throttle(uri, opts)`: it returns the URI of a local read-only nbdkit that proxies `uri` at
that rate (registered with process.py, so it dies with the conversion).
"""

from __future__ import annotations

import threading

from ... import nbd, process
from ...errors import V2VError
from .base import InputOptions


def rate_argv(uri: str, port: int, bps: int | None, rate_file: str | None) -> list[str]:
    """nbdkit proxying `uri` read-only on 127.0.0.1:`port`, limited to `bps` bits/s."""
    argv = ["nbdkit", "-r", "-f", "--exit-with-parent", "-i", nbd.LOCALHOST, "-p", str(port),
            "--filter=rate", "nbd", f"uri={uri}"]
    if bps:
        argv.append(f"rate={bps}")
    if rate_file:
        argv.append(f"rate-file={rate_file}")
    return argv


def _drain(child: process.Child) -> None:
    if child.proc.stderr is not None:
        for _ in child.proc.stderr:
            pass


def throttle(uri: str, opts: InputOptions, tries: int = 5) -> str:
    """`uri` itself without a limit; else the URI of a rate-limited local proxy of it."""
    if not opts.bandwidth and not opts.bandwidth_file:
        return uri
    last: V2VError | None = None
    for _ in range(tries):
        port = nbd.free_port()
        child = process.spawn(rate_argv(uri, port, opts.bandwidth, opts.bandwidth_file))
        try:
            nbd.wait_for_nbd(nbd.LOCALHOST, port, child)
        except V2VError as e:  # most likely lost the race for the port: try another
            child.terminate()
            last = e
            continue
        threading.Thread(target=_drain, args=(child,), daemon=True).start()
        return nbd.nbd_uri("localhost", port)
    raise V2VError(f"cannot limit the bandwidth of {uri}: {last}")
