"""Replay onto the real broker: counts, content, keys, pacing, delayed labels."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from producer.normalize import to_review
from producer.replay import ReplayOptions, replay
from producer.settings import ProducerSettings
from producer.sources import file_passes, synth_passes
from spoiler_common.contracts import LabelArrived, ReviewPublished, decode
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import TopicSpec
from synth import generate
from synth.writer import write_jsonl

from .conftest import read_all, topic_count

pytestmark = pytest.mark.integration

QUIET: dict[str, Any] = {"progress": False}


def _file(tmp_path: Path, n: int, seed: int = 3) -> Path:
    path = tmp_path / "reviews.jsonl"
    write_jsonl(generate(n, seed), path)
    return path


def test_replay_sends_exactly_n_reviews_with_the_records_content(
    tmp_path: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    n = 500
    path = _file(tmp_path, n)
    summary = replay(file_passes(path), kafka_settings, producer_settings,
                     ReplayOptions(**QUIET))
    assert (summary.sent, summary.failed, sum(summary.skipped.values())) == (n, 0, 0)
    assert topic_count(kafka_settings, topics["reviews"].name) == n

    landed = read_all(kafka_settings, topics["reviews"].name, n)
    assert len(landed) == n
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    now = datetime.now(UTC)
    expected = {}
    for record in records:
        review, _ = to_review(record, now)
        expected[review.review_id] = review.model_dump(exclude={"produced_at"})
    for message in landed:
        review = decode(message.value, ReviewPublished)
        assert message.key == review.review_id.encode()
        assert review.is_spoiler is None  # ground truth travels on the labels topic only
        assert review.model_dump(exclude={"produced_at"}) == expected[review.review_id]
        assert message.headers["schema_version"] == b"1"
        assert message.headers["source"] == b"producer"


def test_keys_are_stable_across_runs(
    tmp_path: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    path = _file(tmp_path, 100, seed=4)
    for _ in range(2):
        replay(file_passes(path), kafka_settings, producer_settings, ReplayOptions(**QUIET))
    landed = read_all(kafka_settings, topics["reviews"].name, 200)
    keys = [m.key for m in landed]
    assert len(keys) == 200 and len(set(keys)) == 100
    # Same key, same partition: a consumer sees one review's versions in order.
    by_key: dict[bytes, set[int]] = {}
    for m in landed:
        by_key.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in by_key.values())


def test_rate_holds_within_ten_percent_over_five_seconds(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    rate, seconds = 200, 5
    n = rate * seconds
    summary = replay(synth_passes(n, 1, "none", None), kafka_settings, producer_settings,
                     ReplayOptions(rate=rate, label_fraction=0.0, **QUIET))
    assert summary.sent == n
    stamps = sorted(m.timestamp_ms for m in read_all(kafka_settings, topics["reviews"].name, n))
    observed = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000)
    assert abs(observed - rate) / rate < 0.10, observed
    # Steady, not bursts: every second of the run carries about `rate` messages.
    per_second: dict[int, int] = {}
    for s in stamps:
        per_second[(s - stamps[0]) // 1000] = per_second.get((s - stamps[0]) // 1000, 0) + 1
    full = [per_second[k] for k in sorted(per_second)[:-1]]
    assert all(abs(c - rate) / rate < 0.15 for c in full), full


def test_labels_arrive_no_earlier_than_the_delay(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    n, delay = 200, 2.0
    summary = replay(synth_passes(n, 2, "none", None), kafka_settings, producer_settings,
                     ReplayOptions(label_delay_s=delay, rate=100, label_source="synthetic",
                                   **QUIET))
    assert summary.labels_sent == n
    reviews = {decode(m.value, ReviewPublished).review_id: m
               for m in read_all(kafka_settings, topics["reviews"].name, n)}
    labels = read_all(kafka_settings, topics["labels"].name, n)
    assert len(labels) == n
    truth = {}
    for record in generate(n, 2):
        review, is_spoiler = to_review(record, datetime.now(UTC))
        truth[review.review_id] = is_spoiler
    for m in labels:
        label = decode(m.value, LabelArrived)
        review_msg = reviews[label.review_id]
        review = decode(review_msg.value, ReviewPublished)
        assert label.is_spoiler == truth[label.review_id]
        assert label.source == "synthetic"
        assert (label.labelled_at - review.produced_at).total_seconds() >= delay
        assert m.timestamp_ms - review_msg.timestamp_ms >= delay * 1000


def test_label_fraction_is_respected(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    n = 1000
    summary = replay(synth_passes(n, 5, "none", None), kafka_settings, producer_settings,
                     ReplayOptions(label_fraction=0.3, **QUIET))
    assert summary.labels_sent + summary.labels_withheld == n
    assert 0.25 * n < summary.labels_sent < 0.35 * n
    assert topic_count(kafka_settings, topics["labels"].name) == summary.labels_sent


def test_include_label_keeps_is_spoiler_in_the_review(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    replay(synth_passes(20, 6, "none", None), kafka_settings, producer_settings,
           ReplayOptions(include_label=True, **QUIET))
    landed = read_all(kafka_settings, topics["reviews"].name, 20)
    assert all(decode(m.value, ReviewPublished).is_spoiler is not None for m in landed)


def test_real_sample_replays_with_zero_rejects(
    real_sample: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    summary = replay(file_passes(real_sample), kafka_settings, producer_settings,
                     ReplayOptions(**QUIET))
    assert dict(summary.skipped) == {}
    assert summary.sent == summary.read == 715
    assert summary.labels_sent == 715
    assert topic_count(kafka_settings, topics["reviews"].name) == 715


def test_limit_start_at_and_loop(
    tmp_path: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    path = _file(tmp_path, 30, seed=7)
    summary = replay(file_passes(path, start_at=10, loop=True), kafka_settings,
                     producer_settings, ReplayOptions(limit=50, **QUIET))
    assert summary.sent == 50 and summary.stopped_by == "limit"
    keys = {m.key.decode() for m in read_all(kafka_settings, topics["reviews"].name, 50)}
    # 20 from the first pass (after --start-at 10), then 30 with -L1 ids.
    assert sum(k.endswith("-L1") for k in keys) == 30
    assert len(keys) == 50


def test_file_scenarios(
    tmp_path: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    path = _file(tmp_path, 2000, seed=8)
    summary = replay(file_passes(path), kafka_settings, producer_settings,
                     ReplayOptions(scenario="spoiler_rate", drift_at=0, **QUIET))
    labels = [decode(m.value, LabelArrived).is_spoiler
              for m in read_all(kafka_settings, topics["labels"].name, summary.labels_sent)]
    assert summary.skipped["scenario"] > 800
    assert 0.5 < sum(labels) / len(labels) < 0.7


def test_metrics_are_served_with_the_documented_names(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings, free_port: int,
) -> None:
    import urllib.request

    from producer.metrics import ProducerMetrics

    metrics = ProducerMetrics.create()
    metrics.serve("127.0.0.1", free_port)
    try:
        replay(synth_passes(50, 9, "none", None), kafka_settings, producer_settings,
               ReplayOptions(**QUIET), metrics=metrics)
        body = urllib.request.urlopen(f"http://127.0.0.1:{free_port}/metrics").read().decode()
    finally:
        metrics.close()
    assert "spoiler_producer_sent_total 50.0" in body
    assert "spoiler_producer_labels_sent_total 50.0" in body
    assert "spoiler_producer_failed_total 0.0" in body
    assert "spoiler_producer_send_latency_seconds_count" in body
    assert "spoiler_producer_skipped_total" in body
