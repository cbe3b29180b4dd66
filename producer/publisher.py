"""The Kafka side: one idempotent producer, delivery accounting, delayed labels."""

from __future__ import annotations

import logging
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from producer.exceptions import BrokerUnavailable
from producer.metrics import ProducerMetrics
from producer.settings import ProducerSettings
from spoiler_common.contracts import LabelArrived, encode, headers_for, utc_now
from spoiler_common.kafka import producer as build_producer
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import topic_name

log = logging.getLogger(__name__)
# Serve delivery reports every this many messages: often enough to keep the
# queue moving, rarely enough that poll() is not the hot path.
POLL_EVERY = 512
# Observe the send latency of one review in 2**k (the histogram is a sample).
LATENCY_SAMPLE_MASK = 0x7


@dataclass
class Deliveries:
    sent: int = 0
    failed: int = 0
    labels_sent: int = 0
    labels_failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def keep_label(review_id: str, fraction: float) -> bool:
    """Whether this review's label is sent: a hash decision, the same in every run."""
    if fraction >= 1.0:
        return True
    return zlib.crc32(review_id.encode("utf-8")) < fraction * 2**32


class Publisher:
    """Sends reviews now and their labels `label_delay_s` later, counting deliveries."""

    def __init__(self, kafka: KafkaSettings, settings: ProducerSettings,
                 metrics: ProducerMetrics, *, label_delay_s: float, label_source: str) -> None:
        self.reviews_topic = topic_name("reviews", kafka.topic_prefix)
        self.labels_topic = topic_name("labels", kafka.topic_prefix)
        self.kafka = kafka
        self.settings = settings
        self.metrics = metrics
        self.label_delay_s = label_delay_s
        self.label_source = label_source
        self.deliveries = Deliveries()
        self.pending_labels: deque[tuple[float, str, bool]] = deque()
        self._review_headers: list[tuple[str, bytes]] | None = None
        self._label_headers: list[tuple[str, bytes]] | None = None
        self._since_poll = 0
        self._latencies: list[float | None] = []
        self._synced = (0, 0, 0)
        self._producer = build_producer(
            kafka,
            settings.client_id,
            **{
                "queue.buffering.max.messages": settings.queue_max_messages,
                "queue.buffering.max.kbytes": 2_097_151,
                "linger.ms": settings.linger_ms,
                "batch.size": settings.batch_size,
                "compression.type": settings.compression,
                "error_cb": self._on_error,
                "logger": logging.getLogger("producer.librdkafka"),
            },
        )

    # -- start-up ---------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast, with one clear sentence, when Kafka or the topics are not there.

        A topic created a moment ago may not have a leader yet: its metadata is
        retried until `connect_timeout_s` before it counts as missing.
        """
        deadline = time.monotonic() + self.settings.connect_timeout_s
        while True:
            try:
                metadata = self._producer.list_topics(
                    timeout=max(deadline - time.monotonic(), 1.0))
            except KafkaException as exc:
                raise BrokerUnavailable(
                    f"cannot reach Kafka at {self.kafka.bootstrap_servers} within "
                    f"{self.settings.connect_timeout_s:.0f}s ({exc.args[0].str()}): start it "
                    "(make up) or set SPOILER_KAFKA_BOOTSTRAP_SERVERS"
                ) from exc
            missing = [
                topic for topic in (self.reviews_topic, self.labels_topic)
                if (found := metadata.topics.get(topic)) is None or found.error is not None
                or any(p.leader < 0 for p in found.partitions.values())
            ]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"topic {missing[0]} does not exist (or has no leader) on "
                    f"{self.kafka.bootstrap_servers}: create the topics with "
                    "`spoiler-topics ensure` (make up does it)"
                )
            time.sleep(0.25)

    def _on_error(self, error: KafkaError) -> None:
        log.warning("Kafka client error code=%s error=%s", error.name(), error.str())

    # -- hot path ---------------------------------------------------------------------
    # Delivery callbacks only count; Prometheus is brought up to date in bulk at each
    # poll (`_sync_metrics`), and latency is sampled, because per-message metric
    # updates cost as much as the send itself.
    def _on_review(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.deliveries.sent += 1
            if not self.deliveries.sent & LATENCY_SAMPLE_MASK:
                self._latencies.append(msg.latency())
        else:
            self._failed(err, msg)
            self.deliveries.failed += 1

    def _on_label(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.deliveries.labels_sent += 1
        else:
            self._failed(err, msg)
            self.deliveries.labels_failed += 1

    def _failed(self, err: KafkaError, msg: Message) -> None:
        name = err.name()
        self.deliveries.errors[name] = self.deliveries.errors.get(name, 0) + 1
        if sum(self.deliveries.errors.values()) <= 10:
            log.error("Delivery failed topic=%s key=%s error=%s", msg.topic(), msg.key(),
                      err.str())

    def _sync_metrics(self) -> None:
        d, m, last = self.deliveries, self.metrics, self._synced
        if d.sent != last[0]:
            m.sent.inc(d.sent - last[0])
        failed = d.failed + d.labels_failed
        if failed != last[1]:
            m.failed.inc(failed - last[1])
        if d.labels_sent != last[2]:
            m.labels_sent.inc(d.labels_sent - last[2])
        self._synced = (d.sent, failed, d.labels_sent)
        if self._latencies:
            observe = m.send_latency.observe
            for latency in self._latencies:
                if latency is not None:
                    observe(latency)
            self._latencies.clear()

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)
        self._sync_metrics()

    def _produce(self, topic: str, key: bytes, value: bytes,
                 headers: list[tuple[str, bytes]], callback: Any) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers,  # type: ignore[arg-type]
                                       on_delivery=callback)
                break
            except BufferError:
                # The local queue is full: let the broker catch up.
                self.poll(0.05)
        self._since_poll += 1
        if self._since_poll >= POLL_EVERY:
            self._since_poll = 0
            self.poll(0)

    def send_review(self, review_id: str, value: bytes, headers: list[tuple[str, bytes]],
                    label: bool | None) -> None:
        self._produce(self.reviews_topic, review_id.encode("utf-8"), value, headers,
                      self._on_review)
        if label is not None:
            self.pending_labels.append((time.monotonic() + self.label_delay_s, review_id, label))
            if self.label_delay_s <= 0:
                self.send_due_labels()

    def send_due_labels(self, now: float | None = None) -> None:
        labels = self.pending_labels
        if not labels:
            return
        now = time.monotonic() if now is None else now
        while labels and labels[0][0] <= now:
            _, review_id, is_spoiler = labels.popleft()
            message = LabelArrived(review_id=review_id, is_spoiler=is_spoiler,
                                   labelled_at=utc_now(), source=self.label_source)
            if self._label_headers is None:
                self._label_headers = headers_for(message, self.settings.source)
            self._produce(self.labels_topic, review_id.encode("utf-8"), encode(message),
                          self._label_headers, self._on_label)

    def idle(self, seconds: float) -> None:
        """Wait `seconds`, serving delivery reports meanwhile."""
        self.poll(seconds)

    def next_label_in(self) -> float | None:
        if not self.pending_labels:
            return None
        return max(self.pending_labels[0][0] - time.monotonic(), 0.0)

    def drop_pending_labels(self) -> int:
        dropped = len(self.pending_labels)
        self.pending_labels.clear()
        return dropped

    def flush(self) -> int:
        """Wait for every outstanding delivery; return how many never got one."""
        left = self._producer.flush(self.settings.flush_timeout_s)
        self._sync_metrics()
        if left:
            log.error("Messages still undelivered after flush count=%d timeout_s=%.0f", left,
                      self.settings.flush_timeout_s)
        return left
