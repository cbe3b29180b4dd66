"""Progress of long work: a rich bar on a terminal, a periodic log line otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger(__name__)


class ProgressReporter:
    """Call `advance(k)` often; it costs a clock read unless something is due.

    `total=None` means unknown (a stream or a loop): no ETA then.
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        enabled: bool = True,
        interval_s: float = 10.0,
        tty: bool | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.interval_s = interval_s
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._started = time.monotonic()
        self._next_log = self._started + interval_s
        self._pending = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressReporter:
        if self.enabled and self.tty:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, rate="0")
        return self

    def advance(self, k: int = 1) -> None:
        self.done += k
        self._pending += k
        # Reading the clock per message would show in the replay's hot path.
        if not self.enabled or self._pending < 16:
            return
        now = time.monotonic()
        if self._bar is not None:
            # Refreshing rich per message would cost more than sending it.
            if now >= self._next_log:
                self._bar.update(self._task, completed=self.done,  # type: ignore[arg-type]
                                 rate=f"{self.rate(now):,.0f}")
                self._next_log = now + 0.2
            self._pending = 0
            return
        self._pending = 0
        if now >= self._next_log:
            self._next_log = now + self.interval_s
            self.log_line(now)

    def rate(self, now: float | None = None) -> float:
        elapsed = (now or time.monotonic()) - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def log_line(self, now: float | None = None) -> None:
        rate = self.rate(now)
        if self.total:
            left = max(self.total - self.done, 0)
            eta = f"{left / rate:.0f}s" if rate > 0 else "?"
            log.info("%s done=%d total=%d rate=%.0f/s eta=%s", self.description, self.done,
                     self.total, rate, eta)
        else:
            log.info("%s done=%d rate=%.0f/s", self.description, self.done, rate)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done,  # type: ignore[arg-type]
                             rate=f"{self.rate():,.0f}")
            self._bar.stop()
