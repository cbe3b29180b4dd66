"""Shadow scoring: a challenger model scored beside the champion, never in its way.

With SPOILER_WORKER_CHALLENGER_PATH set, each batch's reviews (or a share of
them, chosen by a hash of ``review_id``) are scored by the challenger too. Its
predictions (``role: challenger``) go to the shadow-predictions topic and are
delivered with the batch; the champion's stay the product on the predictions
topic.

Policy: nothing the challenger does may change what happens to the champion's
reviews. A challenger that fails to load leaves the worker serving the champion
alone (retried when its bundle changes on disk); a failing model call or a
prediction Kafka refuses costs only those shadow predictions (counted in
``spoiler_worker_challenger_failures``, logged at most once a minute), never a
dead letter, a pause or a retry of the champion's batch.

The challenger runs in its own inference thread while the champion runs in
its own, so with a core to spare the champion's batch is not slowed at all.
That thread runs at a lower scheduling priority (nice +10, Linux): on a saturated
machine the champion's model call keeps the CPU, and the challenger uses what is
left, so the batch waits at most about the challenger's own inference time
instead of both calls slowing each other down.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spoiler_common.contracts import ReviewPublished, SpoilerPredicted
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import Loader, Model, ModelHolder
from stream_processor.prediction import prediction_for

log = logging.getLogger(__name__)

# Test seam, as in stream_processor.processing: hook("shadow_predict", texts) before
# each challenger model call (raising there is the challenger failing).
FaultHook = Callable[[str, object], None]
# Failures are logged at most this often (a broken challenger fails every batch).
LOG_EVERY_S = 60.0
_HASH_SPACE = 2**64


# Added to the shadow inference thread's niceness (19 is the lowest priority).
SHADOW_NICE = 10


def lower_thread_priority(increment: int = SHADOW_NICE) -> None:
    """Make the calling thread yield the CPU to the others (Linux schedules threads alone).

    An executor initializer for the shadow thread. Raising one's own niceness needs no
    privilege; where the platform has no per-thread niceness it is skipped (logged).
    """
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except (AttributeError, OSError) as exc:
        log.info("Shadow inference thread keeps the normal priority: %s", exc)


def shadow_executor() -> ThreadPoolExecutor:
    """The challenger's own inference thread, at a lower priority than the champion's."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow-inference",
                              initializer=lower_thread_priority)


def low_priority(loader: Loader) -> Loader:
    """`loader` run in a fresh low-priority thread.

    onnxruntime's intra-op threads (SPOILER_WORKER_THREADS > 1) inherit the priority
    of the thread that creates the session. Not the shadow thread itself: a reload
    must not hold up the shadow scoring a champion's batch may be waiting for.
    """
    def load(path: Path, variant: str, threads: int) -> Model:
        with ThreadPoolExecutor(1, thread_name_prefix="shadow-load",
                                initializer=lower_thread_priority) as pool:
            return pool.submit(loader, path, variant, threads).result()

    return load


def in_share(review_id: str, share: float) -> bool:
    """Whether `review_id` falls in the sampled `share`: the same answer in every process.

    A keyed hash (blake2b), not Python's salted `hash`: every worker and every replay
    picks the same reviews, so a replayed review is scored in shadow again or never.
    """
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    digest = hashlib.blake2b(review_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * _HASH_SPACE


@dataclass(frozen=True)
class ShadowItem:
    """One review of the batch for the challenger: the review, its model text, its queue time."""

    review: ReviewPublished
    text: str
    queue_ms: float


class ShadowScorer:
    """The challenger, its inference thread and its policy (see the module docstring)."""

    def __init__(
        self,
        holder: ModelHolder,
        *,
        share: float,
        executor: Executor,
        metrics: WorkerMetrics,
        fault_hook: FaultHook | None = None,
    ) -> None:
        self.holder = holder
        self.share = share
        self.executor = executor
        self.metrics = metrics
        self.fault_hook = fault_hook
        self._last_log = 0.0
        self._unlogged = 0
        metrics.enable_challenger(loaded=holder.ready)

    def _log_failure(self, what: str, count: int, exc: BaseException | str) -> None:
        self._unlogged += count
        now = time.monotonic()
        if now - self._last_log < LOG_EVERY_S:
            return
        log.error("Challenger %s; the champion is unaffected role=challenger model_version=%s "
                  "reviews_since_last_log=%d error=%s", what,
                  self.holder.current.version if self.holder.ready else "none",
                  self._unlogged, exc)
        self._last_log, self._unlogged = now, 0

    def send_failed(self, review_id: str, error: BaseException) -> None:
        """A challenger prediction Kafka kept refusing: dropped, counted, logged."""
        self.metrics.challenger_failures.labels(stage="send").inc()
        self._log_failure(f"prediction for review_id={review_id} not delivered", 1,
                          f"{type(error).__name__}: {error}")

    async def score(
        self, champion: Model, items: Sequence[ShadowItem]
    ) -> list[SpoilerPredicted]:
        """The challenger's predictions for the sampled `items` (never raises)."""
        try:
            return await self._score(champion, items)
        except Exception as exc:  # the boundary: a bug here must not reach the champion
            self.metrics.challenger_failures.labels(stage="inference").inc(len(items))
            self._log_failure("scoring raised", len(items), f"{type(exc).__name__}: {exc}")
            return []

    async def _score(
        self, champion: Model, items: Sequence[ShadowItem]
    ) -> list[SpoilerPredicted]:
        if not items:
            return []
        if not self.holder.ready:
            self.metrics.challenger_skipped.labels(reason="not_loaded").inc(len(items))
            return []
        model = self.holder.current
        if str(model.version) == str(champion.version):
            # After a promotion the challenger path may still name the new champion: a
            # second row under the same (review_id, model_version) would overwrite it.
            self.metrics.challenger_skipped.labels(reason="same_version").inc(len(items))
            return []
        chosen = [item for item in items if in_share(item.review.review_id, self.share)]
        if len(chosen) < len(items):
            self.metrics.challenger_skipped.labels(reason="not_sampled").inc(
                len(items) - len(chosen))
        if not chosen:
            return []
        texts = [item.text for item in chosen]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            if self.fault_hook is not None:
                self.fault_hook("shadow_predict", texts)
            batch = await loop.run_in_executor(self.executor, model.predict, texts)
            scored = list(zip(batch.probabilities, batch.input_tokens, batch.unknown_tokens,
                              strict=True))
        except Exception as exc:
            self.metrics.challenger_failures.labels(stage="inference").inc(len(chosen))
            self._log_failure("model call failed", len(chosen), f"{type(exc).__name__}: {exc}")
            return []
        seconds = time.perf_counter() - started
        self.metrics.challenger_inference_seconds.observe(seconds)
        predicted_at = datetime.now(UTC)
        per_review_ms = seconds * 1000.0 / len(chosen)
        out: list[SpoilerPredicted] = []
        for item, (probability, input_tokens, unknown_tokens) in zip(chosen, scored,
                                                                     strict=True):
            try:
                out.append(prediction_for(
                    item.review, model=model, probability=float(probability),
                    input_tokens=int(input_tokens), unknown_tokens=int(unknown_tokens),
                    inference_ms=per_review_ms, queue_ms=item.queue_ms,
                    predicted_at=predicted_at, role="challenger",
                ))
            except Exception as exc:  # e.g. a NaN score: this review's shadow only
                self.metrics.challenger_failures.labels(stage="inference").inc()
                self._log_failure("prediction invalid", 1, f"{type(exc).__name__}: {exc}")
        return out


__all__ = [
    "LOG_EVERY_S",
    "SHADOW_NICE",
    "ShadowItem",
    "ShadowScorer",
    "in_share",
    "low_priority",
    "lower_thread_priority",
    "shadow_executor",
]
