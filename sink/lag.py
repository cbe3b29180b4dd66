"""`spoiler_sink_consumer_lag{topic}`: this process's uncommitted messages, by topic.

Refreshed by the consume thread every `lag_interval_s` from the consumer's own view
(its assignment, committed offsets and cached watermarks, so no extra requests but
the committed offsets); the arithmetic is the shared rule of `spoiler_common.lag`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaException

from sink import metrics
from spoiler_common.lag import lag_by_topic

log = logging.getLogger(__name__)


class LagGauge:
    """Sets the lag gauge for every topic the sink reads (0 where it owns no partition)."""

    def __init__(
        self,
        consumer: Consumer,
        topics: Iterable[str],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._topics = list(topics)
        self._interval_s = interval_s
        self._clock = clock
        self._next = 0.0

    def maybe_update(self) -> None:
        """Update the gauge if `interval_s` has passed since the last time."""
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._interval_s
        try:
            assigned = self._consumer.assignment()
            committed = self._consumer.committed(assigned, timeout=5) if assigned else []
            watermarks = {(tp.topic, tp.partition):
                          self._consumer.get_watermark_offsets(tp, cached=True)
                          for tp in committed}
        except KafkaException as exc:
            log.debug("Lag not updated: %s", exc)
            return
        lag = {**dict.fromkeys(self._topics, 0), **lag_by_topic(committed, watermarks)}
        for topic, value in lag.items():
            metrics.CONSUMER_LAG.labels(topic).set(value)


__all__ = ["LagGauge"]
