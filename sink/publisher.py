"""Publishing the sink's dead letters to the dead-letter topic (writer thread)."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from sink import metrics
from sink.batch import SERVICE, Rejected
from sink.exceptions import DeadLetterUnavailable
from spoiler_common.contracts import headers_for
from spoiler_common.dead_letters import DeadLetterReason

log = logging.getLogger(__name__)

# How long one publish waits for the broker before the batch counts as failed (and
# is retried): long enough for a leader election, short enough to show in /healthz.
FLUSH_TIMEOUT_S = 30.0


class DeadLetterPublisher:
    """Sends dead letters and waits until Kafka has them all, or raises."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    def publish(self, rejected: list[Rejected]) -> None:
        """Deliver every dead letter; DeadLetterUnavailable if any was not (retry the batch)."""
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err.str())

        for item in rejected:
            letter = item.dead_letter
            try:
                self._producer.produce(
                    self.topic, item.encoded, key=item.key,
                    headers=list(headers_for(letter, SERVICE)), on_delivery=delivered,
                )
            except Exception as exc:
                raise DeadLetterUnavailable(f"cannot queue dead letter: {exc}") from exc
            if letter.reason != DeadLetterReason.INTERNAL_ERROR:  # logged with its traceback
                log.warning("Dead-lettered message reason=%s topic=%s partition=%s offset=%s: "
                            "%s", letter.reason, letter.source_topic, letter.partition,
                            letter.offset, letter.error[:200])
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
        if remaining or failures:
            raise DeadLetterUnavailable(
                f"dead-letter topic {self.topic} did not take {remaining + len(failures)} "
                f"message(s): {'; '.join(failures[:3]) or 'timeout'}"
            )
        for item in rejected:
            metrics.DEAD_LETTERS.labels(item.dead_letter.reason).inc()

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is still queued (at shutdown)."""
        self._producer.flush(timeout_s)


__all__ = ["DeadLetterPublisher"]
