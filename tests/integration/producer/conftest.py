"""Helpers of the producer's integration tests: read back what landed on a topic."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import cast

import pytest
from confluent_kafka import KafkaException, TopicPartition

from producer.settings import ProducerSettings
from spoiler_common.kafka import consumer
from spoiler_common.settings import KafkaSettings


@dataclass(frozen=True)
class Landed:
    key: bytes
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int
    partition: int


def topic_count(kafka: KafkaSettings, topic: str) -> int:
    """Messages on `topic` right now: the sum of its partitions' high watermarks."""
    c = consumer(kafka, f"count-{uuid.uuid4().hex[:8]}", "producer-tests")
    try:
        # Right after topic creation a partition may not have its leader yet: retry.
        for attempt in range(20):
            try:
                parts = c.list_topics(topic, timeout=10).topics[topic].partitions
                return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                           for p in parts)
            except KafkaException:
                if attempt == 19:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")
    finally:
        c.close()


def read_all(
    kafka: KafkaSettings, topic: str, expected: int, timeout_s: float = 30
) -> list[Landed]:
    """Every message of `topic` (at least `expected` of them), from the beginning."""
    c = consumer(kafka, f"read-{uuid.uuid4().hex[:8]}", "producer-tests")
    c.subscribe([topic])
    out: list[Landed] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in c.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                key, value, partition = msg.key(), msg.value(), msg.partition()
                # The producer sets a key, a value and bytes headers on every message.
                assert key is not None and value is not None and partition is not None
                # A consumer's headers are a list of (name, bytes) pairs.
                headers = dict(cast(list[tuple[str, bytes]], msg.headers() or []))
                out.append(Landed(key, value, headers, msg.timestamp()[1], partition))
    finally:
        c.close()
    return out


@pytest.fixture
def producer_settings() -> ProducerSettings:
    """No metrics server and quiet progress: tests run side by side."""
    return ProducerSettings(metrics_port=0, label_delay_s=0.0, connect_timeout_s=10)
