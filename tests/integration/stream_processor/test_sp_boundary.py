"""Nothing acknowledged that was not delivered: injected failures in a real worker on real Kafka.

An exception raised on one chosen message, a send that fails twice, and a send
outage that makes the worker exit without acknowledging its batch: in every case
each review ends with exactly a prediction or a dead letter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import DeadLetter, SpoilerPredicted, decode
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import TopicSpec
from tests.integration.stream_processor.sp_support import review, send_reviews

pytestmark = pytest.mark.integration

HOOK = "tests.integration.stream_processor.fault_hooks:hook"


def _outcomes(preds: Any, dlq: Any) -> tuple[set[str], dict[str, DeadLetter]]:
    predicted = {decode(v, SpoilerPredicted).review_id for v in preds.values}
    letters = {}
    for v in dlq.values:
        letter = decode(v, DeadLetter)
        letters[(letter.original_key() or b"").decode()] = letter
    return predicted, letters


def test_injected_exception_and_failing_send_lose_nothing(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    start_worker: Any, reader: Any,
) -> None:
    reviews = [review(i, f"An ordinary review number {i}.") for i in range(40)]
    reviews[5] = review(5, "This one has raise-in-worker in it.")
    reviews[9] = reviews[9].model_copy(update={"review_id": "flaky-1"})
    send_reviews(kafka_settings, topics["reviews"].name, reviews)
    worker = start_worker(tiny_bundle, batch_size=8, fault_hook=HOOK, retry_initial_s=0.2,
                          send_attempts=5)
    worker.wait_ready()
    preds, dlq = reader(topics["predictions"].name), reader(topics["dead_letters"].name)
    wanted = {r.review_id for r in reviews}

    def done() -> bool:
        dlq.poll(0.2)
        predicted, letters = _outcomes(preds, dlq)
        return predicted | set(letters) >= wanted
    preds.until(done, 120, "every review's outcome")
    predicted, letters = _outcomes(preds, dlq)
    assert predicted == wanted - {"r5"}
    assert set(letters) == {"r5"}
    assert letters["r5"].reason == "internal_error"
    assert letters["r5"].error == "RuntimeError: injected by the test hook"
    assert worker.proc is not None and worker.proc.poll() is None, "the worker must not exit"
    assert worker.metric('spoiler_worker_batch_retries_total{stage="send"}') >= 2
    assert worker.metric('spoiler_worker_dead_letters_total{reason="internal_error"}') == 1


def test_undeliverable_batch_stops_the_worker_unacknowledged_and_is_redelivered(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    start_worker: Any, reader: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = tmp_path / "outage-marker"
    monkeypatch.setenv("SP_TEST_FAULT_MARKER", str(marker))
    reviews = [review(i, f"An ordinary review number {i}.") for i in range(30)]
    reviews[12] = review(12, "Here the broker goes away: start-outage.")
    send_reviews(kafka_settings, topics["reviews"].name, reviews)
    first = start_worker(tiny_bundle, batch_size=8, fault_hook=HOOK, retry_initial_s=0.1,
                         retry_max_s=0.2, send_attempts=3)
    assert first.proc is not None
    assert first.proc.wait(120) == 3, "exit code 3: a batch was not delivered"
    assert marker.read_text() == str(first.proc.pid)
    assert "Batch not delivered; exiting without acknowledging it" in first.log.read_text()

    second = start_worker(tiny_bundle, batch_size=8, fault_hook=HOOK)
    second.wait_ready()
    preds = reader(topics["predictions"].name)
    wanted = {r.review_id for r in reviews}
    preds.until(lambda: {decode(v, SpoilerPredicted).review_id for v in preds.values} >= wanted,
                120, "every review predicted after the restart")
    dlq = reader(topics["dead_letters"].name)
    dlq.poll(2)
    assert dlq.values == []


def test_a_broken_model_pauses_consuming_until_it_works_again(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    start_worker: Any, reader: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "model-broken"
    broken.touch()
    monkeypatch.setenv("SP_TEST_MODEL_BROKEN", str(broken))
    reviews = [review(i, f"An ordinary review number {i}.") for i in range(20)]
    send_reviews(kafka_settings, topics["reviews"].name, reviews)
    worker = start_worker(tiny_bundle, batch_size=8, fault_hook=HOOK, retry_initial_s=0.2,
                          retry_max_s=1.0)
    preds, dlq = reader(topics["predictions"].name), reader(topics["dead_letters"].name)

    def paused() -> bool:
        try:
            status, body = worker.http("/readyz")
        except OSError:  # still starting
            return False
        return status == 503 and "fails on every text" in str(body.get("paused"))
    preds.until(paused, 120, "readiness to report the paused worker")
    assert worker.metric("spoiler_worker_model_failing") == 1
    dlq.poll(2)
    preds.poll(0.5)
    assert preds.values == [] and dlq.values == [], "a broken model must not dead-letter"
    assert worker.http("/healthz")[0] == 200  # alive: restarting would not fix the model

    broken.unlink()  # the model works again (as after a reload)
    wanted = {r.review_id for r in reviews}
    preds.until(lambda: {decode(v, SpoilerPredicted).review_id for v in preds.values} >= wanted,
                120, "every review predicted once the model works")
    assert worker.wait_ready()["consuming"] is True
    assert worker.metric("spoiler_worker_model_failing") == 0
    assert worker.metric('spoiler_worker_batch_retries_total{stage="model"}') >= 1
    dlq.poll(1)
    assert dlq.values == []
