"""Progress and event observers for a conversion: plain text, rich bars on a tty, or JSON.

The pipeline reports stages and per-disk copy progress to a `Monitor`; which one is chosen from
the output mode (`--machine-readable` → JSON, a terminal → rich progress bars, else plain lines).
"""

from __future__ import annotations

import sys
import threading

from .. import log


class Monitor:
    """Plain text: stage lines, and progress lines at every 10% (not on a tty)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[int, int] = {}

    def stage(self, text: str) -> None:
        log.message(text)

    def disk_start(self, index: int, total: int, size: int) -> None:
        self.stage(f"Copying disk {index + 1}/{total}")

    def progress(self, index: int, fraction: float) -> None:
        step = int(fraction * 10)
        with self._lock:
            if step > self._last.get(index, -1):
                self._last[index] = step
                log.debug(f"disk {index + 1}: {fraction * 100:.0f}%")

    def disk_done(self, index: int) -> None:
        self.progress(index, 1.0)

    def committing(self, target: object) -> None:
        """The output `target` is about to be committed (a fleet job records what it will
        publish: fleet/commit.py); nothing to show."""

    def close(self) -> None:
        pass


class JsonMonitor(Monitor):
    def disk_start(self, index: int, total: int, size: int) -> None:
        super().disk_start(index, total, size)
        log.event("disk-start", disk=index + 1, total=total, size=size)

    def progress(self, index: int, fraction: float) -> None:
        step = int(fraction * 100)
        with self._lock:
            if step > self._last.get(index, -1):
                self._last[index] = step
                log.event("progress", disk=index + 1, percent=step)


class RichMonitor(Monitor):
    """One rich progress bar per disk on an interactive terminal."""

    def __init__(self) -> None:
        super().__init__()
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

        self._progress = Progress("[progress.description]{task.description}", BarColumn(),
                                  TaskProgressColumn(), TimeRemainingColumn(), transient=False)
        self._tasks: dict[int, object] = {}

    def disk_start(self, index: int, total: int, size: int) -> None:
        super().disk_start(index, total, size)
        with self._lock:
            if not self._tasks:
                self._progress.start()
            self._tasks[index] = self._progress.add_task(
                f"disk {index + 1}/{total} ({size / 1024**3:.1f} GiB)", total=1.0)

    def progress(self, index: int, fraction: float) -> None:
        task = self._tasks.get(index)
        if task is not None:
            self._progress.update(task, completed=fraction)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._tasks:
            self._progress.stop()


def choose(machine_readable: bool, quiet: bool) -> Monitor:
    if machine_readable:
        return JsonMonitor()
    if sys.stdout.isatty() and not quiet:
        return RichMonitor()
    return Monitor()
