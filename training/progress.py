"""Progress for long loops: a rich bar on a terminal, a periodic log line otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)


class Progress:
    """`with Progress("train", total) as p: p.advance(1, loss=0.3)`."""

    def __init__(self, what: str, total: int, every_s: float = 15.0) -> None:
        self.what, self.total, self.every_s = what, max(total, 1), every_s
        self.done = 0
        self.started = self.last_log = time.monotonic()
        self._bar: Any = None  # a rich Progress on a terminal
        self._task: Any = None

    def __enter__(self) -> Progress:
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeRemainingColumn())
            bar.start()
            self._task = bar.add_task(self.what, total=self.total, info="")
            self._bar = bar
        return self

    def advance(self, n: int = 1, **info: float) -> None:
        self.done += n
        text = " ".join(f"{k}={v:.4f}" for k, v in info.items())
        if self._bar is not None:
            self._bar.update(self._task, advance=n, info=text)
            return
        now = time.monotonic()
        if now - self.last_log >= self.every_s or self.done == self.total:
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("%s %d/%d rate=%.2f/s eta=%.0fs %s", self.what, self.done, self.total,
                     rate, eta, text)
            self.last_log = now

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
