"""The worker's per-message boundary, a failing model and failed sends (stand-ins, no Kafka)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import DeadLetter, decode
from stream_processor.exceptions import BatchAbandoned, DeliveryFailed
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import ModelHolder
from stream_processor.processing import BatchHandler, RetryPolicy
from tests.unit.stream_processor.test_sp_handler_reload import StandIn, msg

pytestmark = pytest.mark.unit


class Broken(StandIn):
    def predict(self, texts: list[str]) -> Any:
        raise RuntimeError("the model is broken")


def handler(model: StandIn, fail_send: Any = None, hook: Any = None
            ) -> tuple[BatchHandler, list[tuple[str, bytes]], WorkerMetrics]:
    sent: list[tuple[str, bytes]] = []

    async def send(topic: str, key: bytes | None, value: bytes, headers: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        error = fail_send(topic, key) if fail_send else None
        if error:
            fut.set_exception(error)
        else:
            sent.append((topic, value))
            fut.set_result(None)
        return fut

    metrics = WorkerMetrics()
    holder = ModelHolder(Path("."), loader=lambda p, v, t: model)
    holder.load_initial()
    h = BatchHandler(holder=holder, metrics=metrics, executor=ThreadPoolExecutor(1), send=send,
                     text_of=lambda s, t: t, predictions_topic="preds", dead_letters_topic="dlq",
                     max_dead_letter_bytes=100_000,
                     retry=RetryPolicy(initial_s=0.01, max_s=0.02, send_attempts=3),
                     fault_hook=hook)
    return h, sent, metrics


def test_anything_a_message_raises_becomes_an_internal_error_dead_letter() -> None:
    def hook(stage: str, item: Any) -> None:
        if stage == "process" and item.offset == 1:
            raise KeyError("injected")

    h, sent, metrics = handler(StandIn(), hook=hook)
    asyncio.run(h.handle([msg(0), msg(1), msg(2)]))
    assert [t for t, _ in sent] == ["preds", "dlq", "preds"]
    letter = decode(sent[1][1], DeadLetter)
    assert (letter.reason, letter.error, letter.offset) == (
        "internal_error", "KeyError: 'injected'", 1)
    assert metrics.dead_letters.labels(reason="internal_error")._value.get() == 1


def test_a_model_failing_on_every_text_pauses_instead_of_dead_lettering() -> None:
    h, sent, metrics = handler(Broken())

    async def scenario() -> None:
        task = asyncio.ensure_future(h.handle([msg(0), msg(1)]))
        while h.paused is None:
            await asyncio.sleep(0.01)
        assert metrics.model_failing._value.get() == 1 and not sent
        h.holder._current = StandIn("v2")  # a reload that fixes it
        await task

    asyncio.run(scenario())
    assert [t for t, _ in sent] == ["preds", "preds"] and h.paused is None
    assert metrics.model_failing._value.get() == 0
    assert metrics.batch_retries.labels(stage="model")._value.get() >= 1


def test_a_single_poisonous_review_is_dead_lettered_alone() -> None:
    h, sent, _ = handler(StandIn())
    asyncio.run(h.handle([msg(0, "POISON")]))
    assert decode(sent[0][1], DeadLetter).reason == "inference_error" and h.paused is None


def test_stopping_while_the_model_fails_abandons_the_batch() -> None:
    h, sent, _ = handler(Broken())

    async def scenario() -> None:
        task = asyncio.ensure_future(h.handle([msg(0)]))
        while h.paused is None:
            await asyncio.sleep(0.01)
        h.stopping.set()
        with pytest.raises(BatchAbandoned):
            await task

    asyncio.run(scenario())
    assert not sent


def test_failed_sends_are_retried_until_confirmed() -> None:
    failures = {"left": 2}

    def flaky(topic: str, key: bytes | None) -> Exception | None:
        if key == b"r1" and failures["left"]:
            failures["left"] -= 1
            return RuntimeError("broker hiccup")
        return None

    h, sent, metrics = handler(StandIn(), fail_send=flaky)
    out = asyncio.run(h.handle([msg(0), msg(1), msg(2)]))
    assert [t for t, _ in sent] == ["preds"] * 3
    assert [o.topic for o in out] == ["preds"] * 3
    assert metrics.batch_retries.labels(stage="send")._value.get() == 2


def test_one_message_kafka_keeps_refusing_becomes_a_dead_letter() -> None:
    def refuse(topic: str, key: bytes | None) -> Exception | None:
        return RuntimeError("too large") if topic == "preds" and key == b"r1" else None

    h, sent, _ = handler(StandIn(), fail_send=refuse)
    out = asyncio.run(h.handle([msg(0), msg(1), msg(2)]))
    assert [o.topic for o in out] == ["preds", "dlq", "preds"]
    letter = decode(next(v for t, v in sent if t == "dlq"), DeadLetter)
    assert letter.reason == "internal_error" and "could not publish to preds" in letter.error


def test_a_batch_kafka_takes_nothing_of_is_not_delivered() -> None:
    h, sent, _ = handler(StandIn(), fail_send=lambda t, k: RuntimeError("broker down"))
    with pytest.raises(DeliveryFailed):
        asyncio.run(h.handle([msg(0), msg(1, value=b"{bad")]))
    assert not sent
