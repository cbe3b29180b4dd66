"""Hot reload mid-stream: the version switches between batches, nothing is lost; a broken
bundle is refused and the previous model keeps serving."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import SpoilerPredicted, decode
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import TopicSpec
from tests.integration.stream_processor.sp_support import (
    bundle_copy,
    real_texts,
    review,
    send_reviews,
)

pytestmark = pytest.mark.integration


def point(link: Path, target: Path) -> None:
    """Swap a symlink atomically: what a model roll-out does."""
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_hot_reload_mid_stream(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    real_sample: Path, start_worker: Any, reader: Any, tmp_path: Path,
) -> None:
    v1 = bundle_copy(tiny_bundle, tmp_path / "v1", "tiny-1")
    v2 = bundle_copy(tiny_bundle, tmp_path / "v2", "tiny-2")
    broken = bundle_copy(tiny_bundle, tmp_path / "broken", "tiny-broken")
    model_file = broken / "model.onnx"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    serving = tmp_path / "serving"
    point(serving, v1)

    worker = start_worker(serving, batch_size=4)
    worker.wait_ready()
    texts = real_texts(real_sample, 300)
    reviews = [review(i, t) for i, t in enumerate(texts)]

    def trickle() -> None:  # a live stream while the model changes under it
        for start in range(0, len(reviews), 10):
            send_reviews(kafka_settings, topics["reviews"].name, reviews[start:start + 10])
            time.sleep(0.05)

    sender = threading.Thread(target=trickle)
    sender.start()
    preds = reader(topics["predictions"].name)
    preds.until(lambda: len(preds.values) >= 40, 60, "predictions from the first model")
    point(serving, v2)
    wait_for(lambda: worker.http("/model")[1]["version"] == "tiny-2", 30, "the reload")
    sender.join()
    preds.until(lambda: len(preds.values) >= len(reviews), 120, "every prediction")
    preds.poll(1)

    predictions = [decode(v, SpoilerPredicted) for v in preds.values]
    assert sorted(p.review_id for p in predictions) == sorted(r.review_id for r in reviews)
    versions = [p.model_version for p in sorted(predictions, key=lambda p: p.predicted_at)]
    switch = versions.index("tiny-2")
    assert switch > 0 and set(versions[:switch]) == {"tiny-1"}
    assert set(versions[switch:]) == {"tiny-2"}, "a batch after the switch used the old model"
    assert worker.metric('spoiler_worker_model_reloads_total{result="ok"}') == 1

    # A broken bundle is refused; the running model keeps serving.
    point(serving, broken)
    wait_for(lambda: worker.metric('spoiler_worker_model_reloads_total{result="failed"}') >= 1,
             30, "the failed reload")
    status, model = worker.http("/model")
    assert model["version"] == "tiny-2" and model["last_reload_error"]
    status, body = worker.http("/model/reload", {}, method="POST")
    assert status == 409 and body["result"] == "failed" and body["version"] == "tiny-2"
    more = [review(i, t, prefix="after") for i, t in enumerate(texts[:20])]
    send_reviews(kafka_settings, topics["reviews"].name, more)
    preds.until(lambda: len(preds.values) >= len(reviews) + len(more), 60, "predictions")
    late = [decode(v, SpoilerPredicted) for v in preds.values[len(reviews):]]
    assert {p.model_version for p in late} == {"tiny-2"}
    assert worker.http("/healthz")[0] == 200

    # SIGHUP reloads on demand (here back to v1, fixed by the operator).
    point(serving, v1)
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: worker.http("/model")[1]["version"] == "tiny-1", 30, "the SIGHUP reload")
    assert worker.http("/model")[1]["last_reload_error"] is None
