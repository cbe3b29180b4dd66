"""/predict runs on its own thread with a concurrency limit: a clear 429 when full."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from spoiler_common.contracts import SpoilerPredicted, decode
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import TopicSpec
from tests.integration.stream_processor.sp_support import real_texts, review, send_reviews

pytestmark = pytest.mark.integration


def test_predict_over_its_limit_gets_429_and_the_stream_keeps_flowing(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, tiny_bundle: Path,
    real_sample: Path, start_worker: Any, reader: Any,
) -> None:
    worker = start_worker(tiny_bundle, predict_concurrency=1, max_predict_texts=256)
    worker.wait_ready()
    texts = real_texts(real_sample, 40)
    body = {"texts": (texts * 7)[:256]}
    reviews = [review(i, t) for i, t in enumerate(texts)]
    send_reviews(kafka_settings, topics["reviews"].name, reviews)
    # Eight large requests at once against one slot: the first runs, the rest that
    # arrive while it runs are refused at once instead of queueing.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: worker.http("/predict", body), range(8)))
    statuses = [status for status, _ in answers]
    assert 200 in statuses and 429 in statuses, statuses
    assert set(statuses) <= {200, 429}
    busy = next(payload for status, payload in answers if status == 429)
    assert "SPOILER_WORKER_PREDICT_CONCURRENCY" in busy["error"] and busy["limit"] == 1
    ok = next(payload for status, payload in answers if status == 200)
    assert len(ok["probabilities"]) == 256
    assert worker.metric("spoiler_worker_predict_rejected_total") == statuses.count(429)
    # The stream was not blocked by /predict: every review is predicted.
    preds = reader(topics["predictions"].name)
    preds.until(lambda: len(preds.values) >= len(reviews), 120, "predictions")
    got = {decode(v, SpoilerPredicted).review_id for v in preds.values}
    assert got == {r.review_id for r in reviews}
    # With the slot free again, a request is served.
    status, _ = worker.http("/predict", {"text": texts[0]})
    assert status == 200
