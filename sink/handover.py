"""The one object the consume thread and the writer thread share.

Everything that crosses between the two threads is here, behind one condition
variable; everything else has a single owner (the consume thread owns the Kafka
consumer and its buffer, the writer thread owns the database connection):

- the queue: at most one prepared batch waits for the writer, so batches are
  stored in the order they were read; `active` counts those handed over and not
  finished (stored, abandoned or dropped);
- the offset ledger (:mod:`sink.offsets`): which stored offsets may be committed,
  and the current assignment generation;
- the shutdown deadline, after which the writer abandons what it holds;
- the writer's failure, and whether it is retrying a batch (the consume thread
  pauses its partitions meanwhile);
- `wake`, which cuts the writer's backoff short when a revoke or the deadline
  may have made its batch abandoned.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from sink.batch import PreparedBatch
from sink.exceptions import SinkError
from sink.offsets import OffsetLedger, Offsets


class Handover:
    """Batches from the consume thread to the writer thread, and what comes back."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: collections.deque[PreparedBatch] = collections.deque()
        self._active = 0
        self._closing = False
        self._error: BaseException | None = None
        self._ledger = OffsetLedger()
        self._deadline: float | None = None
        self._wake = threading.Event()
        self._retrying = threading.Event()

    # ---- consume thread ------------------------------------------------------------------

    def stamp(self, batch: PreparedBatch) -> PreparedBatch:
        """Mark a freshly prepared batch as read in the current generation."""
        with self._cond:
            self._ledger.stamp(batch)
        return batch

    def offer(self, batch: PreparedBatch, timeout: float) -> bool:
        """Queue `batch` once no other batch waits; False when that takes over `timeout`."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._queue or self._closing, timeout):
                return False
            self._queue.append(batch)
            self._active += 1
            self._cond.notify_all()
            return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every batch handed over is finished; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    @property
    def active(self) -> int:
        """Batches handed over and not finished."""
        with self._cond:
            return self._active

    @property
    def retrying(self) -> bool:
        """Whether the writer is retrying a batch that failed."""
        return self._retrying.is_set()

    def take_stored(self) -> Offsets:
        """Offsets of the batches stored since the last call, to commit now."""
        with self._cond:
            return self._ledger.take()

    def new_generation(self) -> None:
        """Partitions revoked or lost: what was read before is no longer ours to commit."""
        with self._cond:
            self._ledger.new_generation()
        self._wake.set()

    def begin_deadline(self, seconds: float) -> None:
        """Shutdown: the writer abandons what it holds `seconds` from now (set once)."""
        with self._cond:
            if self._deadline is not None:
                return
            self._deadline = self._clock() + seconds
        self._wake.set()

    def time_left(self) -> float:
        """Seconds until the shutdown deadline (0 without one)."""
        with self._cond:
            deadline = self._deadline
        return 0.0 if deadline is None else max(0.0, deadline - self._clock())

    def close(self) -> None:
        """No more batches: the writer thread ends once the queue is empty."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    @property
    def failed(self) -> bool:
        with self._cond:
            return self._error is not None

    def raise_if_failed(self) -> None:
        """Raise SinkError if the writer thread died (the sink must stop with an error)."""
        with self._cond:
            error = self._error
        if error is not None:
            raise SinkError(f"the writer thread failed: {error}") from error

    # ---- writer thread -------------------------------------------------------------------

    def next_batch(self) -> PreparedBatch | None:
        """The next batch to store, in order; None once closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queue) or self._closing)
            if not self._queue:
                return None
            batch = self._queue.popleft()
            self._cond.notify_all()
            return batch

    def abandoned(self, batch: PreparedBatch) -> bool:
        """Revoked or lost since it was read, or past the shutdown deadline: leave it."""
        with self._cond:
            return not self._ledger.current(batch) or (
                self._deadline is not None and self._clock() > self._deadline
            )

    def stored(self, batch: PreparedBatch) -> bool:
        """`batch` is in PostgreSQL: its offsets may be committed (unless revoked since)."""
        with self._cond:
            return self._ledger.record(batch)

    def finished(self) -> None:
        """The batch taken last is done with (stored or abandoned)."""
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """The writer thread is dying: nothing queued will be stored."""
        with self._cond:
            self._error = error
            self._queue.clear()
            self._active = 0
            self._cond.notify_all()

    def set_retrying(self, retrying: bool) -> None:
        if retrying:
            self._retrying.set()
        else:
            self._retrying.clear()

    def pause(self, seconds: float) -> None:
        """The writer's backoff wait; a revoke or the shutdown deadline ends it early."""
        self._wake.wait(seconds)
        self._wake.clear()


__all__ = ["Handover"]
