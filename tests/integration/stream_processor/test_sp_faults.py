"""Faults and scale-out: kill -9 and restart, graceful stop, two workers in one group."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import SpoilerPredicted, decode
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import TopicSpec
from tests.integration.stream_processor.sp_support import real_texts, review, send_reviews

pytestmark = pytest.mark.integration

N = 1_000


def _reviews(real_sample: Path, n: int = N) -> list[Any]:
    texts = real_texts(real_sample, 715)
    return [review(i, texts[i % len(texts)]) for i in range(n)]


def _predicted_ids(values: list[bytes]) -> Counter[str]:
    return Counter(decode(v, SpoilerPredicted).review_id for v in values)


@pytest.mark.faults
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_stop_mid_stream_and_restart_loses_nothing(
    sig: int, topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    real_sample: Path, start_worker: Any, reader: Any,
) -> None:
    reviews = _reviews(real_sample)
    send_reviews(kafka_settings, topics["reviews"].name, reviews)
    preds = reader(topics["predictions"].name)
    # Small batches: many commits, and a stream long enough to stop in the middle.
    first = start_worker(tiny_bundle, batch_size=2)
    first.wait_ready()
    preds.until(lambda: len(preds.values) >= 50, 120, "the first predictions")
    first.kill(sig)
    at_stop = len(set(_predicted_ids(preds.values)))
    assert at_stop < N, "the worker finished before it was stopped: nothing was tested"

    second = start_worker(tiny_bundle, batch_size=16)
    second.wait_ready()
    wanted = {r.review_id for r in reviews}
    preds.until(lambda: set(_predicted_ids(preds.values)) >= wanted, 180, "every review")
    preds.poll(2)
    counts = _predicted_ids(preds.values)
    duplicates = sum(counts.values()) - len(counts)
    print(f"signal={sig} predicted_before_stop={at_stop} duplicates={duplicates}")
    assert set(counts) == wanted
    if sig == signal.SIGTERM:
        # A graceful stop finishes its batch and commits: nothing is predicted twice.
        assert duplicates == 0
        assert first.proc is not None and first.proc.returncode in (0, -signal.SIGTERM, 143)


def test_two_workers_share_partitions(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    real_sample: Path, start_worker: Any, reader: Any,
) -> None:
    a, b = start_worker(tiny_bundle), start_worker(tiny_bundle)
    a.wait_ready()
    b.wait_ready()
    # Wait for the rebalance to settle: both own partitions, together all six, no overlap.
    deadline = time.monotonic() + 60
    while True:
        pa, pb = a.wait_ready()["partitions"], b.wait_ready()["partitions"]
        if pa and pb and sorted(pa + pb) == list(range(topics["reviews"].partitions)):
            break
        assert time.monotonic() < deadline, f"partitions never split: a={pa} b={pb}"
        time.sleep(0.5)

    reviews = _reviews(real_sample, 600)
    send_reviews(kafka_settings, topics["reviews"].name, reviews)
    preds = reader(topics["predictions"].name)
    wanted = {r.review_id for r in reviews}
    preds.until(lambda: set(_predicted_ids(preds.values)) >= wanted, 180, "every review")
    ins = a.metric("spoiler_worker_messages_in_total"), b.metric("spoiler_worker_messages_in_total")
    print(f"partitions a={pa} b={pb} messages a={ins[0]:.0f} b={ins[1]:.0f}")
    assert ins[0] > 0 and ins[1] > 0 and sum(ins) >= len(reviews)
