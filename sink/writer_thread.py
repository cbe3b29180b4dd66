"""The writer thread: stores the batches handed over, in order, until each is stored or abandoned.

It never gives up on a batch it owns (giving up would lose it, dying would crash-loop
on it): a failing write is retried with the sink's backoff, and the failure count and
the batch's offsets show in `spoiler_sink_batch_failures` and `/healthz`. A batch is
left unstored, uncommitted, only when it is no longer ours: its partitions were revoked
or lost, or the shutdown deadline passed. The next owner reads it again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from sink import metrics
from sink.batch import PreparedBatch, reject
from sink.db import WriteResult
from sink.exceptions import DatabaseUnavailable, DeadLetterUnavailable
from sink.handover import Handover
from sink.publisher import DeadLetterPublisher
from sink.retry import Backoff
from spoiler_common.dead_letters import DeadLetterReason

log = logging.getLogger(__name__)


class BatchStore(Protocol):
    """What the writer thread needs of :class:`sink.db.Writer`."""

    def write(self, batch: PreparedBatch) -> WriteResult: ...


class WriterThread:
    """Takes batches from the hand-over and stores them (the only user of the database)."""

    def __init__(
        self,
        handover: Handover,
        store: BatchStore,
        dead_letters: DeadLetterPublisher,
        backoff: Backoff,
        health: metrics.Health,
        max_dead_letter_bytes: int,
    ) -> None:
        self._handover = handover
        self._store = store
        self._dead_letters = dead_letters
        self._backoff = backoff
        self._health = health
        self._max_dead_letter_bytes = max_dead_letter_bytes
        self._thread = threading.Thread(target=self.run, name="sink-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def run(self) -> None:
        """Store batches until the hand-over closes; on an unexpected error, report and end."""
        while (batch := self._handover.next_batch()) is not None:
            try:
                self.write(batch)
            except BaseException as exc:
                log.exception("Writer thread failed")
                self._handover.fail(exc)
                return
            self._handover.finished()

    def write(self, batch: PreparedBatch) -> None:
        """Store `batch`, retrying with backoff for as long as it is ours."""
        failures = 0

        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            nonlocal failures
            failures = attempt
            metrics.RETRIES.inc()
            known = isinstance(exc, DatabaseUnavailable | DeadLetterUnavailable)
            detail = str(exc) if known else f"{type(exc).__name__}: {exc}"
            self._health.set_database(False, detail)
            self._health.set_failures(attempt, batch.first_offsets())
            self._handover.set_retrying(True)
            log.warning("Write failed, retrying in %.1fs attempt=%d messages=%d batch=%s: %s",
                        delay, attempt, batch.messages, batch.first_offsets(), detail,
                        exc_info=None if known else exc)

        try:
            stored = self._backoff.run(lambda: self._attempt(batch), retry_on=Exception,
                                       sleep=self._handover.pause, on_retry=on_retry)
        finally:
            self._handover.set_retrying(False)
        if stored:
            if failures:
                log.info("Write succeeded after retries attempts=%d", failures + 1)
            self._health.set_database(True, "ok")
            self._health.set_failures(0, "")

    def _attempt(self, batch: PreparedBatch) -> bool:
        """One try: True when stored, False when the batch is no longer ours."""
        if self._handover.abandoned(batch):
            log.warning("Batch abandoned uncommitted (revoked or shutting down); the next "
                        "owner re-reads it messages=%d", batch.messages)
            return False
        self._store_once(batch)
        return True

    def _store_once(self, batch: PreparedBatch) -> None:
        started = time.perf_counter()
        # Dead letters first: once published they must not be published again on retry.
        if batch.rejected:
            self._dead_letters.publish(batch.rejected)
            batch.rejected = []
        result = self._store.write(batch)
        refused = [
            reject(msg, f"PostgreSQL refused the row of table {table}: {error}",
                   self._max_dead_letter_bytes, reason=DeadLetterReason.DB_REJECTED)
            for table, msg, error in result.refused
        ]
        if refused:
            self._dead_letters.publish(refused)
        elapsed = time.perf_counter() - started
        self._handover.stored(batch)
        metrics.WRITE_SECONDS.observe(elapsed)
        metrics.BATCH_SIZE.observe(batch.messages)
        for table, rows in result.rows.items():
            metrics.ROWS_WRITTEN.labels(table).inc(rows)
        for topic, count in batch.per_topic.items():
            metrics.MESSAGES.labels(topic).inc(count)
        log.debug("Batch stored messages=%d rows=%s seconds=%.3f", batch.messages, result.rows,
                  elapsed)


__all__ = ["BatchStore", "WriterThread"]
