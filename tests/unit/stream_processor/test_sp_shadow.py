"""Shadow scoring policy with stand-in models: both scored, the champion never affected.

Real bundles and real Kafka: tests/integration/stream_processor/test_sp_shadow.py.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import SpoilerPredicted, decode
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import ModelHolder
from stream_processor.processing import BatchHandler, RetryPolicy
from stream_processor.shadow import ShadowScorer, in_share
from tests.unit.stream_processor.test_sp_handler_reload import StandIn, msg

pytestmark = pytest.mark.unit


class Broken(StandIn):
    def predict(self, texts: list[str]) -> Any:
        raise RuntimeError("the challenger is broken")


def shadow_handler(
    champion: StandIn, challenger: StandIn | None, *, share: float = 1.0,
    refuse: str | None = None, loads: bool = True,
) -> tuple[BatchHandler, list[tuple[str, bytes]], WorkerMetrics]:
    sent: list[tuple[str, bytes]] = []

    async def send(topic: str, key: bytes | None, value: bytes, headers: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        if topic == refuse:
            fut.set_exception(RuntimeError("refused by the test"))
        else:
            sent.append((topic, value))
            fut.set_result(None)
        return fut

    def load_challenger(p: Path, v: str, t: int) -> Any:
        if not loads or challenger is None:
            raise OSError("no bundle here")
        return challenger

    metrics = WorkerMetrics()
    holder = ModelHolder(Path("."), loader=lambda p, v, t: champion)
    holder.load_initial()
    challenger_holder = ModelHolder(
        Path("challenger"), loader=load_challenger, role="challenger",
        on_change=lambda m: metrics.set_challenger(m.name, m.version))
    challenger_holder.try_load_initial()
    shadow = ShadowScorer(challenger_holder, share=share, executor=ThreadPoolExecutor(1),
                          metrics=metrics)
    handler = BatchHandler(
        holder=holder, metrics=metrics, executor=ThreadPoolExecutor(1), send=send,
        text_of=lambda s, t: f"{s} {t}".strip(), predictions_topic="preds",
        dead_letters_topic="dlq", max_dead_letter_bytes=100_000,
        retry=RetryPolicy(initial_s=0.01, max_s=0.01, send_attempts=2),
        shadow=shadow, shadow_topic="shadow",
    )
    return handler, sent, metrics


def decoded(sent: list[tuple[str, bytes]], topic: str) -> list[SpoilerPredicted]:
    return [decode(v, SpoilerPredicted) for t, v in sent if t == topic]


def test_both_models_score_every_review_and_only_the_champion_is_the_product() -> None:
    handler, sent, metrics = shadow_handler(StandIn(version="champ"),
                                            StandIn(version="chall", threshold=0.05))
    asyncio.run(handler.handle([msg(i, "a spoil" if i % 2 else "fine") for i in range(6)]))
    champ, chall = decoded(sent, "preds"), decoded(sent, "shadow")
    assert [p.review_id for p in champ] == [p.review_id for p in chall] == [
        f"r{i}" for i in range(6)]
    assert {(p.role, p.model_version) for p in champ} == {("champion", "champ")}
    assert {(p.role, p.model_version) for p in chall} == {("challenger", "chall")}
    # each model labels with its own threshold
    assert [p.is_spoiler for p in champ] == [bool(i % 2) for i in range(6)]
    assert all(p.is_spoiler for p in chall)
    assert "dlq" not in {t for t, _ in sent}
    assert metrics.predictions._value.get() == 6
    assert metrics.challenger_predictions._value.get() == 6
    assert metrics.challenger_loaded._value.get() == 1


def test_a_failing_challenger_changes_nothing_for_the_champion() -> None:
    batch = [msg(i, "POISON" if i == 2 else "fine") for i in range(5)]
    alone, alone_sent, _ = shadow_handler(StandIn(version="champ"), None, loads=False)
    asyncio.run(alone.handle(batch))
    for challenger in (Broken(version="chall"), StandIn(version="chall", poison="fine")):
        handler, sent, metrics = shadow_handler(StandIn(version="champ"), challenger)
        asyncio.run(handler.handle(batch))
        assert [t for t, _ in sent] == [t for t, _ in alone_sent] == [
            "preds", "preds", "dlq", "preds", "preds"]
        assert metrics.challenger_failures.labels(stage="inference")._value.get() == 5
        assert metrics.model_failing._value.get() == 0
        assert metrics.batch_retries.labels(stage="model")._value.get() == 0


def test_no_shadow_prediction_beside_a_champion_dead_letter() -> None:
    handler, sent, _ = shadow_handler(StandIn(version="champ"),
                                      StandIn(version="chall", poison="NEVER"))
    asyncio.run(handler.handle([msg(0), msg(1, "POISON"), msg(2, value=b"{bad")]))
    assert [t for t, _ in sent] == ["preds", "dlq", "dlq", "shadow"]
    assert [p.review_id for p in decoded(sent, "shadow")] == ["r0"]


def test_a_challenger_that_does_not_load_is_skipped() -> None:
    handler, sent, metrics = shadow_handler(StandIn(version="champ"), None, loads=False)
    asyncio.run(handler.handle([msg(i) for i in range(3)]))
    assert [t for t, _ in sent] == ["preds"] * 3
    assert metrics.challenger_loaded._value.get() == 0
    assert metrics.challenger_skipped.labels(reason="not_loaded")._value.get() == 3


def test_a_challenger_that_is_the_champion_is_not_scored_twice() -> None:
    # Same model_version would overwrite the champion's row (review_id, model_version).
    handler, sent, metrics = shadow_handler(StandIn(version="v9"), StandIn(version="v9"))
    asyncio.run(handler.handle([msg(i) for i in range(3)]))
    assert [t for t, _ in sent] == ["preds"] * 3
    assert metrics.challenger_skipped.labels(reason="same_version")._value.get() == 3


def test_refused_shadow_predictions_are_dropped_not_dead_lettered() -> None:
    handler, sent, metrics = shadow_handler(StandIn(version="champ"), StandIn(version="chall"),
                                            refuse="shadow")
    out = asyncio.run(handler.handle([msg(i) for i in range(4)]))
    assert [t for t, _ in sent] == ["preds"] * 4 and len(out) == 4
    assert metrics.challenger_failures.labels(stage="send")._value.get() == 4
    assert metrics.challenger_predictions._value.get() == 0


def test_the_sampled_share_is_deterministic_by_review_id() -> None:
    handler, sent, metrics = shadow_handler(StandIn(version="champ"), StandIn(version="chall"),
                                            share=0.3)
    batch = [msg(i) for i in range(200)]
    asyncio.run(handler.handle(batch))
    shadowed = {p.review_id for p in decoded(sent, "shadow")}
    assert shadowed == {f"r{i}" for i in range(200) if in_share(f"r{i}", 0.3)}
    assert len(decoded(sent, "preds")) == 200
    assert 35 <= len(shadowed) <= 85  # ~60 expected
    skipped = metrics.challenger_skipped.labels(reason="not_sampled")._value.get()
    assert skipped == 200 - len(shadowed)


def test_in_share_edges_and_stability() -> None:
    ids = [f"review-{i}" for i in range(5000)]
    assert all(in_share(i, 1.0) for i in ids) and not any(in_share(i, 0.0) for i in ids)
    assert 0.22 < sum(in_share(i, 0.25) for i in ids) / len(ids) < 0.28
    # nested: a larger share keeps every review a smaller one picked
    assert all(in_share(i, 0.5) for i in ids if in_share(i, 0.25))
    assert in_share("review-7", 0.5) == in_share("review-7", 0.5)


def test_an_empty_challenger_path_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream_processor.settings import WorkerSettings

    monkeypatch.setenv("SPOILER_WORKER_CHALLENGER_PATH", "")
    assert WorkerSettings().challenger_path is None
    monkeypatch.setenv("SPOILER_WORKER_CHALLENGER_PATH", "/models/challenger")
    assert WorkerSettings().challenger_path == Path("/models/challenger")


def test_the_shadow_thread_runs_at_a_lower_priority_than_the_caller() -> None:
    import os
    import threading

    from stream_processor.shadow import SHADOW_NICE, shadow_executor

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    theirs = shadow_executor().submit(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    assert theirs == min(19, mine + SHADOW_NICE)
    # and the caller's own priority is untouched
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
