"""The worker on real Kafka with a real exported bundle: predictions, dead letters, HTTP."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import DeadLetter, SpoilerPredicted, decode, encode
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import TopicSpec
from tests.integration.stream_processor.sp_support import real_texts, review, send_raw

pytestmark = pytest.mark.integration


def bad_corpus() -> list[tuple[bytes | None, bytes, str]]:
    """(key, value, expected reason) for every kind of bad input the worker must survive."""
    def obj(i: int, **changes: Any) -> dict[str, Any]:
        data = review(i, "A perfectly ordinary review.", prefix="bad").model_dump(mode="json")
        data.update(changes)
        return data

    def raw(data: Any) -> bytes:
        return json.dumps(data).encode()

    no_movie = {k: v for k, v in obj(3).items() if k != "movie_id"}
    return [
        (b"bad1", b'{"review_id": "bad1", ', "invalid_json"),
        (b"bad2", b'["a", "list"]', "not_object"),
        (b"bad3", raw(no_movie), "missing_field"),
        (b"bad4", raw(obj(4, rating="ten")), "wrong_type"),
        (b"bad5", raw(obj(5, review_text="")), "empty_text"),
        (b"bad6", raw(obj(6, review_text=" \n\t  ")), "empty_text"),
        (b"bad7", raw(obj(7, review_text="x" * 20_001)), "text_too_long"),
        (b"bad8", raw(obj(8))[:-2] + b'\xff\xfe"}', "invalid_utf8"),
        (b"bad9", raw(obj(9)).replace(b"ordinary", b"ordi\x00nary"), "nul_byte"),
        (b"bad10", raw(obj(10, review_text="esc\u0000aped")), "nul_byte"),
        (b"bad11", raw(obj(11, schema_version=99)), "unknown_schema_version"),
        (b"not-bad12", raw(obj(12)), "key_mismatch"),
        # Just under the topic's max.message.bytes (1,048,588) with headroom for the batch.
        (b"bad13", raw(obj(13, review_text="y" * 1_000_000)), "text_too_long"),
    ]


def test_valid_and_invalid_messages(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    real_sample: Path, start_worker: Any, reader: Any,
) -> None:
    from spoiler_common.model_runtime import load_bundle, model_text

    texts = real_texts(real_sample, 60)
    reviews = [review(i, t, summary="Summary" if i % 2 else "") for i, t in enumerate(texts)]
    duplicate = reviews[0]  # the same review again: predicted again, not a dead letter
    corpus = bad_corpus()
    # Interleave good and bad so bad messages sit inside batches.
    messages: list[tuple[bytes | None, bytes | None]] = []
    for i, r in enumerate(reviews):
        messages.append((r.review_id.encode(), encode(r)))
        if i < len(corpus):
            messages.append(corpus[i][:2])
    messages.append((duplicate.review_id.encode(), encode(duplicate)))
    send_raw(kafka_settings, topics["reviews"].name, messages)

    # fp32: its scores do not depend on which texts share a batch (int8's dynamic
    # quantisation scales do, by ~1e-5), so the worker must match the loader exactly.
    worker = start_worker(tiny_bundle, batch_size=8, variant="fp32")
    worker.wait_ready()
    preds, dlq = reader(topics["predictions"].name), reader(topics["dead_letters"].name)
    preds.until(lambda: len(preds.values) >= len(reviews) + 1, 120, "predictions")
    dlq.until(lambda: len(dlq.values) >= len(corpus), 60, "dead letters")
    preds.poll(2)
    dlq.poll(1)

    predictions = [decode(v, SpoilerPredicted) for v in preds.values]
    assert len(predictions) == len(reviews) + 1
    assert Counter(p.review_id for p in predictions)[duplicate.review_id] == 2
    assert {p.review_id for p in predictions} == {r.review_id for r in reviews}
    assert all(k == p.review_id.encode() for k, p in zip(preds.keys, predictions, strict=True))

    letters = [decode(v, DeadLetter) for v in dlq.values]
    assert len(letters) == len(corpus)
    got = {letter.key: letter.reason for letter in letters}
    assert got == {(k.decode() if k is not None else None): reason for k, _, reason in corpus}
    for letter in letters:
        assert letter.service == "stream_processor"
        assert letter.source_topic == topics["reviews"].name and letter.offset is not None
    huge = next(x for x in letters if x.key == "bad13")
    assert "truncated" in huge.error

    bundle = load_bundle(tiny_bundle, variant="fp32")
    offline = bundle.predict([model_text(r.review_summary, r.review_text) for r in reviews])
    expected = {r.review_id: float(p) for r, p in zip(reviews, offline.probabilities, strict=True)}
    tokens = {r.review_id: int(n) for r, n in zip(reviews, offline.input_tokens, strict=True)}
    for p in predictions:
        assert p.spoiler_probability == pytest.approx(expected[p.review_id], abs=1e-6)
        assert p.is_spoiler == (p.spoiler_probability >= bundle.threshold)
        assert (p.model_name, p.model_version) == (bundle.name, bundle.version)
        assert p.input_tokens == tokens[p.review_id]
        assert p.end_to_end_ms >= p.queue_ms >= 0 and p.inference_ms > 0

    assert worker.metric("spoiler_worker_messages_in_total") == len(messages)
    assert worker.metric("spoiler_worker_predictions_total") == len(reviews) + 1
    assert worker.metric("spoiler_worker_dead_letters_total") == len(corpus)
    assert worker.metric("spoiler_worker_duplicate_reviews_total") == 1
    _, health = worker.http("/healthz")
    assert health["status"] == "ok"  # the bad messages did not hurt the worker


def test_http_endpoints(
    topics: dict[str, TopicSpec], tiny_bundle: Path, real_sample: Path, start_worker: Any,
) -> None:
    from spoiler_common.model_runtime import load_bundle

    worker = start_worker(tiny_bundle)
    ready = worker.wait_ready()
    assert ready["model_version"] == "tiny-1" and ready["partitions"] == [0, 1, 2, 3, 4, 5]

    texts = real_texts(real_sample, 5)
    bundle = load_bundle(tiny_bundle)  # int8, as served by default

    def offline(batch: list[str]) -> list[float]:
        return [float(p) for p in bundle.predict(batch).probabilities]

    status, one = worker.http("/predict", {"text": texts[0]})
    assert status == 200 and one["probability"] == pytest.approx(offline(texts[:1])[0], abs=1e-9)
    assert one["model_version"] == "tiny-1" and one["is_spoiler"] == [
        one["probability"] >= bundle.threshold]
    status, many = worker.http("/predict", {"texts": texts})
    assert status == 200 and many["probabilities"] == pytest.approx(offline(texts), abs=1e-9)
    assert len(many["input_tokens"]) == len(many["unknown_tokens"]) == 5
    status, listed = worker.http("/predict", texts[:2])
    assert status == 200 and listed["probabilities"] == pytest.approx(offline(texts[:2]), abs=1e-9)
    bodies: list[dict[str, Any]] = [{"texts": []}, {"text": ""}, {"nope": 1},
                                    {"text": "x" * 20_001}]
    for bad in bodies:
        status, body = worker.http("/predict", bad)
        assert status == 422 and body["error"]
    status, body = worker.http("/predict", raw=b"{not json")
    assert status == 422 and "not JSON" in body["error"]

    status, model = worker.http("/model")
    assert status == 200
    assert (model["name"], model["version"]) == (bundle.name, bundle.version)
    assert model["threshold"] == bundle.threshold and model["max_length"] == bundle.max_length
    assert model["metadata"]["version"] == "tiny-1"

    assert worker.http("/healthz") == (200, {"status": "ok", "model_loaded": True})
    status, metrics = worker.http("/metrics")
    assert status == 200
    for name in (
        "spoiler_worker_messages_in_total", "spoiler_worker_predictions_total",
        "spoiler_worker_batch_size_bucket", "spoiler_worker_inference_seconds_bucket",
        "spoiler_worker_end_to_end_seconds_bucket", "spoiler_worker_score_bucket",
        "spoiler_worker_predicted_spoiler_ratio", "spoiler_worker_model_reloads_total",
        'spoiler_worker_model_info{model_name="' + bundle.name + '",model_version="tiny-1"} 1.0',
    ):
        assert name in metrics
