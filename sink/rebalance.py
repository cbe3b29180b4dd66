"""What the sink does when the group takes partitions away (consume thread, inside poll).

- revoked (a rebalance: a member joined or left): store and commit what was
  read, in order, within `revoke_flush_timeout_s`; whatever is not stored
  by then stays uncommitted and the next owner reads it again. Then a new
  generation starts, so a batch read before the revoke never commits afterwards;
- lost (the session expired; someone else owns them already): drop what was read
  and not stored, and commit nothing, which would fail or overwrite the new
  owner's offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import Consumer, TopicPartition

from sink.batch import PreparedBatch
from sink.handover import Handover

log = logging.getLogger(__name__)


class PendingWork(Protocol):
    """What the callbacks need of the consume loop (:class:`sink.consume.ConsumeLoop`)."""

    def take_pending(self) -> list[PreparedBatch]: ...
    def drop_pending(self) -> int: ...
    def commit_stored(self, *, wait: bool = False) -> None: ...


class Rebalancer:
    """The consumer's `on_assign`, `on_revoke` and `on_lost` callbacks."""

    def __init__(
        self,
        work: PendingWork,
        handover: Handover,
        revoke_flush_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._work = work
        self._handover = handover
        self._timeout_s = revoke_flush_timeout_s
        self._clock = clock

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Partitions assigned count=%d", len(partitions))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Store and commit what was read, in order, before the partitions move on."""
        if self._handover.failed:  # nothing can be stored; leave it uncommitted
            self.on_lost(consumer, partitions)
            return
        batches = self._work.take_pending()
        log.info("Partitions revoked count=%d pending_batches=%d", len(partitions),
                 len(batches) + self._handover.active)
        end = self._clock() + self._timeout_s

        def left() -> float:
            return max(0.0, end - self._clock())

        stored = all(self._handover.offer(b, left()) for b in batches) \
            and self._handover.wait_idle(left())
        if not stored:
            log.warning("Could not store pending batches within %.0fs of the rebalance; they "
                        "stay uncommitted for the next owner", self._timeout_s)
        self._work.commit_stored(wait=True)
        self._handover.new_generation()

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        dropped = self._work.drop_pending()
        log.warning("Partitions lost count=%d; dropping %d uncommitted messages",
                    len(partitions), dropped)
        self._handover.new_generation()


__all__ = ["PendingWork", "Rebalancer"]
