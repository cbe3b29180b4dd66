"""Which offsets the sink may commit: only stored batches', only of the current assignment.

The rules, as pure bookkeeping (no Kafka, no lock: :class:`sink.handover.Handover`
keeps the ledger under its lock, and the unit tests drive it directly):

- a batch is stamped with the assignment *generation* it was read in;
- when the writer has stored a batch, its offsets become committable, the highest
  per partition winning (batches are stored in order, so offsets only move forward);
- when partitions are revoked or lost the generation moves on and whatever was
  not committed yet is forgotten: a batch read before that may still finish storing
  (the writer had it), but its offsets are never committed, because its partitions
  may already belong to another sink. The next owner reads those messages again
  and upserts identical rows.

:func:`commit` sends offsets to Kafka; only the consume thread calls it, because
librdkafka's synchronous commit can block while another thread sits in consume().
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from sink.batch import PreparedBatch

log = logging.getLogger(__name__)

# (topic, partition) -> the next offset to read, which is what Kafka commits.
Offsets = dict[tuple[str, int], int]


class OffsetLedger:
    """Offsets stored but not committed yet, and the generation they belong to."""

    def __init__(self) -> None:
        self.generation = 0
        self._stored: Offsets = {}

    def stamp(self, batch: PreparedBatch) -> None:
        """Mark `batch` as read in the current generation."""
        batch.generation = self.generation

    def current(self, batch: PreparedBatch) -> bool:
        """Whether `batch` was read since the last revoke or loss."""
        return batch.generation == self.generation

    def record(self, batch: PreparedBatch) -> bool:
        """`batch` is stored: its offsets may be committed, unless its generation is over."""
        if not self.current(batch):
            return False
        for tp, offset in batch.offsets.items():
            self._stored[tp] = max(offset, self._stored.get(tp, 0))
        return True

    def take(self) -> Offsets:
        """The offsets to commit now; they are handed out once."""
        offsets, self._stored = self._stored, {}
        return offsets

    def new_generation(self) -> None:
        """Partitions revoked or lost: nothing read or stored before now is committed."""
        self.generation += 1
        self._stored = {}


def commit(consumer: Consumer, offsets: Offsets, *, wait: bool = False) -> None:
    """Commit `offsets` (consume thread only); asynchronous unless `wait`.

    In the loop the commit is asynchronous (librdkafka keeps commits in order); before
    partitions are revoked and at shutdown it waits for the broker.
    """
    if not offsets:
        return
    partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
    try:
        if wait:
            consumer.commit(offsets=partitions, asynchronous=False)
        else:
            consumer.commit(offsets=partitions, asynchronous=True)
    except KafkaException as exc:
        _failed(exc)


def on_commit(err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
    """librdkafka's result callback for the asynchronous commits."""
    if err is not None:
        _failed(err)


def _failed(error: object) -> None:
    # The rows are stored; a replay of these messages rewrites identical rows.
    log.warning("Offset commit failed (messages will be replayed, harmlessly): %s", error)


__all__ = ["OffsetLedger", "Offsets", "commit", "on_commit"]
