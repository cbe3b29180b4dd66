"""The worker's Prometheus metrics (names fixed in docs/architecture.md).

Each app gets its own registry, so tests can build several apps in one process.
"""

from __future__ import annotations

from collections import deque

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

# Reviews per model call: powers of two up to the largest sensible batch.
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_E2E_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_SCORE_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))
RATIO_WINDOW = 1_000


class WorkerMetrics:
    """Every metric the worker exports, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.messages_in = Counter(
            "spoiler_worker_messages_in", "Messages read from the reviews topic.", registry=r
        )
        self.predictions = Counter(
            "spoiler_worker_predictions", "Predictions acknowledged by Kafka.", registry=r
        )
        self.duplicates = Counter(
            "spoiler_worker_duplicate_reviews",
            "Reviews whose review_id this process had already predicted (predicted again).",
            registry=r,
        )
        self.dead_letters = Counter(
            "spoiler_worker_dead_letters", "Messages sent to the dead-letter topic.",
            ["reason"], registry=r,
        )
        self.batch_size = Histogram(
            "spoiler_worker_batch_size", "Reviews per model call.",
            buckets=_BATCH_BUCKETS, registry=r,
        )
        self.inference_seconds = Histogram(
            "spoiler_worker_inference_seconds", "Tokenization plus model time per batch.",
            buckets=_INFERENCE_BUCKETS, registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "spoiler_worker_end_to_end_seconds", "From the review's produced_at to its prediction.",
            buckets=_E2E_BUCKETS, registry=r,
        )
        self.score = Histogram(
            "spoiler_worker_score", "Spoiler probability of each prediction.",
            buckets=_SCORE_BUCKETS, registry=r,
        )
        self.spoiler_ratio = Gauge(
            "spoiler_worker_predicted_spoiler_ratio",
            f"Share of the last {RATIO_WINDOW} predictions labelled spoiler.", registry=r,
        )
        self.model_info = Gauge(
            "spoiler_worker_model_info", "The model being served (value 1).",
            ["model_name", "model_version"], registry=r,
        )
        self.reloads = Counter(
            "spoiler_worker_model_reloads", "Model reload attempts by result.",
            ["result"], registry=r,
        )
        for result in ("ok", "failed", "unchanged"):
            self.reloads.labels(result=result)
        self.model_failing = Gauge(
            "spoiler_worker_model_failing",
            "1 while the model fails on every text (consuming paused, retrying), else 0.",
            registry=r,
        )
        self.batch_retries = Counter(
            "spoiler_worker_batch_retries",
            "Retries of a batch: stage=model (the model failed on every text), stage=send "
            "(Kafka did not confirm every message).", ["stage"], registry=r,
        )
        for stage in ("model", "send"):
            self.batch_retries.labels(stage=stage)
        self.dead_letters.labels(reason="internal_error")
        self.predict_rejected = Counter(
            "spoiler_worker_predict_rejected",
            "/predict requests answered 429 because the concurrency limit was reached.",
            registry=r,
        )
        self._recent: deque[bool] = deque(maxlen=RATIO_WINDOW)
        self._served: tuple[str, str] | None = None
        self._add_challenger_metrics()

    def _add_challenger_metrics(self) -> None:
        """Shadow scoring (SPOILER_WORKER_CHALLENGER_PATH): series beside the champion's."""
        r = self.registry
        self.challenger_info = Gauge(
            "spoiler_worker_challenger_info", "The challenger scored in shadow (value 1).",
            ["model_name", "model_version"], registry=r,
        )
        self.challenger_loaded = Gauge(
            "spoiler_worker_challenger_loaded",
            "1 while a challenger is loaded, else 0 (shadow scoring off, or the challenger "
            "failed to load: see the log).", registry=r,
        )
        self.challenger_predictions = Counter(
            "spoiler_worker_challenger_predictions",
            "Challenger predictions acknowledged by Kafka (shadow-predictions topic).", registry=r,
        )
        self.challenger_failures = Counter(
            "spoiler_worker_challenger_failures",
            "Reviews the challenger did not score: stage=inference (its model call failed), "
            "stage=send (Kafka refused its prediction). The champion is never affected.",
            ["stage"], registry=r,
        )
        self.challenger_skipped = Counter(
            "spoiler_worker_challenger_skipped",
            "Reviews not scored in shadow: not_sampled (outside SPOILER_WORKER_CHALLENGER_SHARE),"
            " not_loaded, same_version (the challenger is the champion).", ["reason"], registry=r,
        )
        self.challenger_inference_seconds = Histogram(
            "spoiler_worker_challenger_inference_seconds",
            "Tokenization plus challenger model time per batch.",
            buckets=_INFERENCE_BUCKETS, registry=r,
        )
        self._challenger: tuple[str, str] | None = None

    def observe_labels(self, labels: list[bool]) -> None:
        self._recent.extend(labels)
        if self._recent:
            self.spoiler_ratio.set(sum(self._recent) / len(self._recent))

    def set_model(self, name: str, version: str) -> None:
        if self._served is not None:
            self.model_info.remove(*self._served)
        self.model_info.labels(model_name=name, model_version=version).set(1)
        self._served = (name, version)

    def set_challenger(self, name: str, version: str) -> None:
        if self._challenger is not None:
            self.challenger_info.remove(*self._challenger)
        self.challenger_info.labels(model_name=name, model_version=version).set(1)
        self._challenger = (name, version)
        self.challenger_loaded.set(1)

    def enable_challenger(self, loaded: bool) -> None:
        """Shadow scoring is configured: its series exist (at 0) before anything happens."""
        self.challenger_loaded.set(1 if loaded else 0)
        for stage in ("inference", "send"):
            self.challenger_failures.labels(stage=stage)
        for reason in ("not_sampled", "not_loaded", "same_version"):
            self.challenger_skipped.labels(reason=reason)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["RATIO_WINDOW", "WorkerMetrics"]
