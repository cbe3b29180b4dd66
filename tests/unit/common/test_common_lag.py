"""The one consumer-lag rule (spoiler_common.lag), shared by the sink and the monitor."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from spoiler_common.lag import lag_by_topic, partition_lag

pytestmark = pytest.mark.unit

NOTHING_COMMITTED = -1001  # librdkafka's OFFSET_INVALID


@pytest.mark.parametrize(("committed", "low", "high", "lag"), [
    (40, 0, 50, 10),
    (50, 0, 50, 0),
    (60, 0, 50, 0),  # committed past a truncated end: never negative
    (NOTHING_COMMITTED, 0, 50, 50),
    (NOTHING_COMMITTED, 100, 130, 30),  # retention removed 0..99: they are not lag
    (NOTHING_COMMITTED, None, 30, 30),
    (NOTHING_COMMITTED, -1001, 30, 30),
    (10, 0, None, None),  # end unknown: left out, not guessed
    (10, 0, -1001, None),
])
def test_partition_lag(committed: int, low: int | None, high: int | None,
                       lag: int | None) -> None:
    assert partition_lag(committed, low, high) == lag


def test_lag_by_topic_sums_partitions_and_leaves_out_unknown_ends() -> None:
    committed = [TopicPartition("a", 0, 5), TopicPartition("a", 1, NOTHING_COMMITTED),
                 TopicPartition("b", 0, 3)]
    watermarks = {("a", 0): (0, 10), ("a", 1): (2, 4), ("b", 0): (0, -1001)}
    assert lag_by_topic(committed, watermarks) == {"a": 5 + 2}
