"""The consume thread: poll Kafka, fill a batch, hand it to the writer, commit what it stored.

This thread owns the Kafka consumer and the batch being filled. A batch is handed
over when it has `batch_size` messages or is `batch_max_wait_s` old. While the
writer is stuck retrying a failed batch, the partitions are paused and the consumer
keeps polling, so the process stays in its group (rebalances and the poll-interval
deadline are served) without reading more than it can store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from sink import metrics
from sink.batch import PreparedBatch, prepare
from sink.exceptions import SinkError
from sink.handover import Handover
from sink.offsets import commit
from sink.settings import SinkSettings
from spoiler_common.topics import TopicRole

log = logging.getLogger(__name__)

# How often a hand-over blocked behind a retrying writer looks up to serve the group.
HANDOVER_POLL_S = 0.2


class ConsumeLoop:
    """Polls, batches and hands over; also the rebalance callbacks' view of pending work."""

    def __init__(
        self,
        consumer: Consumer,
        handover: Handover,
        roles: dict[str, TopicRole],
        settings: SinkSettings,
        health: metrics.Health,
        stopping: Callable[[], bool],
    ) -> None:
        self._consumer = consumer
        self._handover = handover
        self._roles = roles
        self._settings = settings
        self._health = health
        self._stopping = stopping
        self._buffer: list[Message] = []
        self._buffer_started = 0.0
        self._pending: PreparedBatch | None = None  # prepared, not yet taken by the writer

    @property
    def buffered(self) -> int:
        """Messages read and not handed over yet."""
        return len(self._buffer)

    def step(self) -> None:
        """One turn: commit what was stored, poll, hand over the batch if it is due."""
        self.commit_stored()
        self._poll_once()
        if self._buffer and self._batch_due():
            self.submit_buffer()

    def commit_stored(self, *, wait: bool = False) -> None:
        """Commit the offsets of every batch stored so far."""
        commit(self._consumer, self._handover.take_stored(), wait=wait)

    def _poll_once(self) -> None:
        s = self._settings
        if self._buffer:
            timeout = max(0.0, self._buffer_started + s.batch_max_wait_s - time.monotonic())
        else:
            timeout = s.batch_max_wait_s
        want = max(1, s.batch_size - len(self._buffer))
        for msg in self._consumer.consume(num_messages=want, timeout=timeout):
            self._accept(msg)

    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise SinkError(f"fatal Kafka error, restart the sink: {err}")
            log.warning("Kafka consumer error code=%s: %s", err.name(), err.str())
            return
        if not self._buffer:
            self._buffer_started = time.monotonic()
        self._buffer.append(msg)

    def _batch_due(self) -> bool:
        return (
            len(self._buffer) >= self._settings.batch_size
            or time.monotonic() - self._buffer_started >= self._settings.batch_max_wait_s
        )

    def _prepare_buffer(self) -> PreparedBatch:
        batch = prepare(self._buffer, self._roles, self._settings.dead_letter_max_value_bytes)
        self._buffer = []
        return self._handover.stamp(batch)

    def submit_buffer(self) -> None:
        """Hand the buffer to the writer; while it is stuck retrying, keep the group alive."""
        batch = self._pending = self._prepare_buffer()
        paused: list[TopicPartition] = []
        try:
            while not self._handover.offer(batch, timeout=HANDOVER_POLL_S):
                self._handover.raise_if_failed()
                self.commit_stored()
                self._health.beat()
                if self._stopping():
                    self._handover.begin_deadline(self._settings.shutdown_timeout_s)
                if self._pending is not batch:
                    return  # revoked or lost meanwhile; the callback dealt with it
                if self._handover.retrying and not paused:
                    paused = self._consumer.assignment()
                    self._consumer.pause(paused)
                if paused:
                    # Serves rebalances and the poll-interval deadline; partitions are
                    # paused, so at most a message fetched before the pause comes back.
                    msg = self._consumer.poll(HANDOVER_POLL_S)
                    if msg is not None:
                        self._accept(msg)
        finally:
            if self._pending is batch:
                self._pending = None
            if paused:
                try:
                    self._consumer.resume(paused)
                except KafkaException as exc:  # partitions already gone
                    log.debug("Resume after retry: %s", exc)

    # ---- for the rebalance callbacks (this thread, inside poll) ----------------------------

    def take_pending(self) -> list[PreparedBatch]:
        """Every batch read and not handed over yet, in order; the loop forgets them."""
        batches = [self._pending] if self._pending is not None else []
        if self._buffer:
            batches.append(self._prepare_buffer())
        self._pending = None
        return batches

    def drop_pending(self) -> int:
        """Forget what was read and not handed over; how many buffered messages that was."""
        dropped = len(self._buffer)
        self._buffer = []
        self._pending = None
        return dropped


__all__ = ["HANDOVER_POLL_S", "ConsumeLoop"]
