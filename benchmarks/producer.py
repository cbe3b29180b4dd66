"""Producer benchmark: replay generated reviews flat out vs a raw confluent-kafka loop.

The raw loop sends the same pre-encoded messages (key, contract value, headers)
with the same producer configuration and does nothing else: the ceiling the
replay (read, parse, validate, encode, send) can reach on this broker.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.normalize import to_review
from producer.replay import ReplayOptions, replay
from producer.settings import ProducerSettings
from producer.sources import file_passes
from spoiler_common.contracts import encode, headers_for
from spoiler_common.kafka import admin_client
from spoiler_common.kafka import producer as build_producer
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import ensure_topics, topic_name, topic_specs
from synth import generate
from synth.writer import write_jsonl

ROUNDS = 2


def _raw(kafka: KafkaSettings, settings: ProducerSettings,
         messages: list[tuple[bytes, bytes]], headers: list[tuple[str, bytes]]) -> float:
    p = build_producer(kafka, "bench-raw", **{
        "queue.buffering.max.messages": settings.queue_max_messages,
        "queue.buffering.max.kbytes": 2_097_151,
        "linger.ms": settings.linger_ms,
        "batch.size": settings.batch_size,
        "compression.type": settings.compression,
    })
    topic = topic_name("reviews", kafka.topic_prefix)
    delivered = 0

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1

    # confluent-kafka's stubs want this exact list type (lists are invariant).
    kafka_headers: list[tuple[str, str | bytes | None]] = list(headers)
    started = time.perf_counter()
    for i, (key, value) in enumerate(messages):
        p.produce(topic, value, key, headers=kafka_headers, on_delivery=on_delivery)
        if i % 512 == 0:
            p.poll(0)
    p.flush(120)
    elapsed = time.perf_counter() - started
    assert delivered == len(messages), f"raw: {delivered} of {len(messages)} delivered"
    return elapsed


def run(quick: bool = False) -> dict[str, Any]:
    n = 10_000 if quick else 100_000
    logging.getLogger("producer").setLevel(logging.WARNING)
    kafka = KafkaSettings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    settings = ProducerSettings(metrics_port=0, label_fraction=0.0, label_delay_s=0.0)
    admin = admin_client(kafka)
    specs = [s for s in topic_specs(kafka.topic_prefix) if s.role in ("reviews", "labels")]
    ensure_topics(admin, specs)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reviews.jsonl"
            write_jsonl(generate(n, seed=1), path)
            now = datetime.now(UTC)
            messages: list[tuple[bytes, bytes]] = []
            headers: list[tuple[str, bytes]] = []
            for record in generate(n, seed=1):
                review, _ = to_review(record, now)
                headers = headers_for(review, settings.source)
                messages.append((review.review_id.encode(), encode(review)))
            payload_mb = sum(len(k) + len(v) for k, v in messages) / 1e6
            raw_s, replay_s = [], []
            for _ in range(1 if quick else ROUNDS):
                raw_s.append(_raw(kafka, settings, messages, headers))
                summary = replay(file_passes(path), kafka, settings,
                                 ReplayOptions(progress=False))
                assert summary.sent == n and summary.failed == 0, summary.render()
                replay_s.append(summary.elapsed_s)
    finally:
        admin.delete_topics([s.name for s in specs], operation_timeout=30)
    raw_t, rep_t = min(raw_s), min(replay_s)
    result = {
        "messages": n,
        "payload_mb": round(payload_mb, 1),
        "replay_msg_per_s": round(n / rep_t),
        "replay_mb_per_s": round(payload_mb / rep_t, 1),
        "raw_msg_per_s": round(n / raw_t),
        "raw_mb_per_s": round(payload_mb / raw_t, 1),
        "replay_vs_raw": round(raw_t / rep_t, 3),
        "rounds": len(raw_s),
    }
    print(f"   {'':8} {'msg/s':>9} {'MB/s':>7}   ({n:,} reviews, {payload_mb:.1f} MB)")
    print(f"   {'replay':8} {result['replay_msg_per_s']:>9,} {result['replay_mb_per_s']:>7}")
    print(f"   {'raw':8} {result['raw_msg_per_s']:>9,} {result['raw_mb_per_s']:>7}")
    print(f"   replay / raw = {result['replay_vs_raw']:.2f}")
    return result


if __name__ == "__main__":
    run()
