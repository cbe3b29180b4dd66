"""Batch policy and reload policy, with a stand-in model object (no ONNX, no Kafka).

These check the worker's bookkeeping only; the real-model behaviour is covered
by the integration tests with a real exported bundle.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import DeadLetter, ReviewPublished, SpoilerPredicted, decode, encode
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import ModelHolder
from stream_processor.processing import BatchHandler, RawMessage, prediction_for

pytestmark = pytest.mark.unit


@dataclass
class Scores:
    probabilities: list[float]
    input_tokens: list[int]
    unknown_tokens: list[int]


@dataclass
class StandIn:
    version: str = "v1"
    name: str = "stand-in"
    threshold: float = 0.5
    max_length: int = 128
    metadata: dict[str, Any] = field(default_factory=dict)
    poison: str = "POISON"

    def predict(self, texts: list[str]) -> Scores:
        if any(self.poison in t for t in texts):
            raise RuntimeError("poisoned")
        return Scores([0.9 if "spoil" in t else 0.1 for t in texts],
                      [len(t.split()) for t in texts], [0] * len(texts))


def msg(i: int, text: str = "fine", key: str | None = None, value: bytes | None = None
        ) -> RawMessage:
    if value is None:
        value = encode(ReviewPublished(
            review_id=f"r{i}", produced_at=datetime.now(UTC) - timedelta(seconds=1),
            review_date="d", movie_id="m", user_id="u", review_text=text))
    return RawMessage((key or f"r{i}").encode(), value, "reviews", i % 3, i, 0.0)


def make_handler(model: StandIn) -> tuple[BatchHandler, list[tuple[str, bytes]], WorkerMetrics]:
    sent: list[tuple[str, bytes]] = []

    async def send(topic: str, key: bytes | None, value: bytes, headers: Any) -> Any:
        sent.append((topic, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    metrics = WorkerMetrics()
    holder = ModelHolder(Path("."), loader=lambda p, v, t: model)
    holder.load_initial()
    handler = BatchHandler(
        holder=holder, metrics=metrics, executor=ThreadPoolExecutor(1), send=send,
        text_of=lambda s, t: f"{s} {t}".strip(), predictions_topic="preds",
        dead_letters_topic="dlq", max_dead_letter_bytes=100_000,
    )
    return handler, sent, metrics


def test_batch_keeps_order_and_splits_good_from_bad() -> None:
    handler, sent, metrics = make_handler(StandIn())
    batch = [msg(0), msg(1, value=b"{bad"), msg(2, "a spoil"), msg(3, key="x"), msg(0)]
    asyncio.run(handler.handle(batch))
    assert [t for t, _ in sent] == ["preds", "dlq", "preds", "dlq", "preds"]
    first = decode(sent[0][1], SpoilerPredicted)
    third = decode(sent[2][1], SpoilerPredicted)
    assert (first.review_id, first.is_spoiler, third.is_spoiler) == ("r0", False, True)
    assert first.end_to_end_ms >= 1000 and first.model_version == "v1"
    assert [decode(sent[i][1], DeadLetter).reason for i in (1, 3)] == [
        "invalid_json", "key_mismatch"]
    assert metrics.duplicates._value.get() == 1  # r0 twice: predicted again, counted
    assert metrics.predictions._value.get() == 3


def test_a_poisonous_text_only_dead_letters_itself() -> None:
    handler, sent, _ = make_handler(StandIn())
    asyncio.run(handler.handle([msg(0), msg(1, "POISON here"), msg(2)]))
    assert [t for t, _ in sent] == ["preds", "dlq", "preds"]
    assert decode(sent[1][1], DeadLetter).reason == "inference_error"


def test_prediction_label_uses_bundle_threshold() -> None:
    review = ReviewPublished(review_id="r", produced_at=datetime.now(UTC) + timedelta(seconds=5),
                             review_date="d", movie_id="m", user_id="u", review_text="t")
    p = prediction_for(review, model=StandIn(threshold=0.3), probability=0.3, input_tokens=4,
                       unknown_tokens=1, inference_ms=2, queue_ms=-1,
                       predicted_at=datetime.now(UTC))
    assert p.is_spoiler and p.threshold == 0.3
    assert p.end_to_end_ms == 0.0 and p.queue_ms == 0.0  # clock skew never goes negative


def test_failed_reload_keeps_the_old_model(tmp_path: Path) -> None:
    models: Iterator[StandIn | Exception] = iter(
        [StandIn("v1"), RuntimeError("corrupt"), StandIn("v3")])

    def loader(path: Path, variant: str, threads: int) -> StandIn:
        item = next(models)
        if isinstance(item, Exception):
            raise item
        return item

    (tmp_path / "bundle.json").write_text(json.dumps({"version": 1}))
    holder = ModelHolder(tmp_path, loader=loader)
    holder.load_initial()

    async def scenario() -> list[str]:
        unchanged = await holder.reload(force=False)
        (tmp_path / "bundle.json").write_text(json.dumps({"version": 2, "pad": "x"}))
        failed = await holder.reload(force=False)
        assert holder.current.version == "v1" and holder.last_error
        again = await holder.reload(force=False)  # same broken state: not retried
        ok = await holder.reload(force=True)
        return [unchanged.outcome, failed.outcome, again.outcome, ok.outcome]

    assert asyncio.run(scenario()) == ["unchanged", "failed", "unchanged", "ok"]
    assert holder.current.version == "v3" and holder.last_error is None


def test_model_info_gauge_follows_reload() -> None:
    metrics = WorkerMetrics()
    metrics.set_model("m", "1")
    metrics.set_model("m", "2")
    text = metrics.render().decode()
    assert 'spoiler_worker_model_info{model_name="m",model_version="2"} 1.0' in text
    assert 'model_version="1"' not in text
