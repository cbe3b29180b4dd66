"""Consumer lag: how many messages a consumer group has not committed yet.

One rule for every service that reports lag (the sink for its own partitions, the
monitor for every group), so the two numbers agree: per partition, the high
watermark minus the committed offset, never negative. A partition without a
committed offset counts from its earliest offset, which after retention is not 0.
A partition whose end is unknown is left out rather than guessed.

Where the offsets come from is the caller's business (a consumer's own view, or the
admin API); this module only does the arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import TopicPartition

# (topic, partition) -> (low, high) watermarks; None (or negative) where unknown.
Watermarks = Mapping[tuple[str, int], tuple[int | None, int | None]]


def partition_lag(committed: int, low: int | None, high: int | None) -> int | None:
    """Messages after `committed` on one partition; None when its end (`high`) is unknown.

    A negative `committed` (librdkafka's OFFSET_INVALID: nothing committed yet)
    counts from `low`, the earliest offset still on the broker, or from 0 when
    that is unknown too.
    """
    if high is None or high < 0:
        return None
    start = committed if committed >= 0 else max(low or 0, 0)
    return max(0, high - start)


def lag_by_topic(committed: Iterable[TopicPartition], watermarks: Watermarks) -> dict[str, int]:
    """topic -> lag summed over the partitions in `committed` (their committed offsets).

    A topic none of whose partitions has a known end is absent.
    """
    lag: dict[str, int] = {}
    for tp in committed:
        low, high = watermarks.get((tp.topic, tp.partition), (None, None))
        n = partition_lag(tp.offset, low, high)
        if n is not None:
            lag[tp.topic] = lag.get(tp.topic, 0) + n
    return lag


__all__ = ["Watermarks", "lag_by_topic", "partition_lag"]
