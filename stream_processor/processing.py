"""From one batch of raw messages to the messages to send: predictions and dead letters.

`BatchHandler.handle` is the whole per-batch policy:
1. decode each message with the shared contract; a failure becomes a dead letter;
2. run the model once for the valid ones, in the inference thread;
3. send predictions and dead letters in input order and wait until Kafka has
   acknowledged all of them; only then does the caller ack (and later commit)
   the source offsets. A crash before that re-delivers the batch: at least once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime

from spoiler_common.contracts import ReviewPublished, SpoilerPredicted, encode, headers_for
from spoiler_common.exceptions import ContractError
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import Model, ModelHolder
from stream_processor.validation import SERVICE, RecentIds, build_dead_letter, parse_review

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
Send = Callable[[str, bytes | None, bytes, Headers], Awaitable[Awaitable[object]]]
TextOf = Callable[[str, str], str]


@dataclass(frozen=True)
class RawMessage:
    """What the handler needs of a consumed record (Faust's Message, or a test's)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float  # seconds since the epoch, broker/producer CreateTime


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


def prediction_for(
    review: ReviewPublished,
    *,
    model: Model,
    probability: float,
    input_tokens: int | None,
    unknown_tokens: int | None,
    inference_ms: float,
    queue_ms: float,
    predicted_at: datetime,
) -> SpoilerPredicted:
    """The SpoilerPredicted for one review; the label uses the bundle's threshold."""
    probability = min(1.0, max(0.0, float(probability)))
    threshold = float(model.threshold)
    end_to_end_ms = (predicted_at - review.produced_at).total_seconds() * 1000.0
    return SpoilerPredicted(
        review_id=review.review_id,
        spoiler_probability=probability,
        is_spoiler=probability >= threshold,
        threshold=threshold,
        model_name=str(model.name),
        model_version=str(model.version),
        produced_at=review.produced_at,
        predicted_at=predicted_at,
        inference_ms=max(0.0, float(inference_ms)),
        queue_ms=max(0.0, float(queue_ms)),
        # Producer and worker clocks may disagree by a few ms: never negative.
        end_to_end_ms=max(0.0, end_to_end_ms),
        input_tokens=None if input_tokens is None else int(input_tokens),
        unknown_tokens=None if unknown_tokens is None else int(unknown_tokens),
    )


class BatchHandler:
    """Turns a batch of raw messages into acknowledged predictions and dead letters."""

    def __init__(
        self,
        *,
        holder: ModelHolder,
        metrics: WorkerMetrics,
        executor: Executor,
        send: Send,
        text_of: TextOf,
        predictions_topic: str,
        dead_letters_topic: str,
        max_dead_letter_bytes: int,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        self.executor = executor
        self.send = send
        self.text_of = text_of
        self.predictions_topic = predictions_topic
        self.dead_letters_topic = dead_letters_topic
        self.max_dead_letter_bytes = max_dead_letter_bytes
        self.recent = RecentIds()

    def _dead_letter(self, msg: RawMessage, error: ContractError | str,
                     reason: str | None = None) -> Outgoing:
        letter, value = build_dead_letter(
            msg.key, msg.value, error, topic=msg.topic, partition=msg.partition,
            offset=msg.offset, max_bytes=self.max_dead_letter_bytes, reason=reason,
        )
        self.metrics.dead_letters.labels(reason=letter.reason).inc()
        log.warning(
            "Dead letter reason=%s topic=%s partition=%s offset=%s error=%s",
            letter.reason, msg.topic, msg.partition, msg.offset, letter.error[:200],
        )
        return Outgoing(self.dead_letters_topic, msg.key, value, headers_for(letter, SERVICE))

    async def _predict(self, model: Model, texts: list[str]) -> tuple[list[object], float]:
        """Run the model in the inference thread; per-text results or the exception."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            batch = await loop.run_in_executor(self.executor, model.predict, texts)
            out: list[object] = [
                (float(p), int(i), int(u))
                for p, i, u in zip(
                    batch.probabilities, batch.input_tokens, batch.unknown_tokens, strict=True
                )
            ]
        except Exception as exc:
            if len(texts) == 1:
                return [exc], time.perf_counter() - started
            # One poisonous text must not sink its batch-mates: isolate it.
            log.exception("Batch inference failed; retrying one by one size=%d", len(texts))
            out = []
            for text in texts:
                single, _ = await self._predict(model, [text])
                out.extend(single)
        return out, time.perf_counter() - started

    async def handle(self, messages: Sequence[RawMessage]) -> list[Outgoing]:
        """Process one batch; returns after Kafka acknowledged every message sent."""
        batch_start = time.time()
        self.metrics.messages_in.inc(len(messages))
        slots: list[Outgoing | int] = []  # dead letter, or index into `valid`
        valid: list[tuple[RawMessage, ReviewPublished]] = []
        for msg in messages:
            try:
                review = parse_review(msg.key, msg.value)
            except ContractError as exc:
                slots.append(self._dead_letter(msg, exc))
                continue
            slots.append(len(valid))
            valid.append((msg, review))

        results: list[object] = []
        if valid:
            model = self.holder.current  # one model per batch: reloads land between batches
            texts = [self.text_of(r.review_summary, r.review_text) for _, r in valid]
            results, seconds = await self._predict(model, texts)
            self.metrics.batch_size.observe(len(valid))
            self.metrics.inference_seconds.observe(seconds)
            predicted_at = datetime.now(UTC)
            per_review_ms = seconds * 1000.0 / len(valid)

        outgoing: list[Outgoing] = []
        labels: list[bool] = []
        for slot in slots:
            if isinstance(slot, Outgoing):
                outgoing.append(slot)
                continue
            msg, review = valid[slot]
            result = results[slot]
            if isinstance(result, BaseException):
                outgoing.append(self._dead_letter(
                    msg, f"model failed on this review: {type(result).__name__}: {result}",
                    reason="inference_error",
                ))
                continue
            probability, input_tokens, unknown_tokens = result  # type: ignore[misc]
            prediction = prediction_for(
                review, model=model, probability=probability, input_tokens=input_tokens,
                unknown_tokens=unknown_tokens, inference_ms=per_review_ms,
                queue_ms=(batch_start - msg.timestamp) * 1000.0, predicted_at=predicted_at,
            )
            if self.recent.seen(review.review_id):
                self.metrics.duplicates.inc()
            labels.append(prediction.is_spoiler)
            self.metrics.score.observe(prediction.spoiler_probability)
            self.metrics.end_to_end_seconds.observe(prediction.end_to_end_ms / 1000.0)
            outgoing.append(Outgoing(
                self.predictions_topic, msg.key, encode(prediction),
                headers_for(prediction, SERVICE),
            ))

        # Send everything first (the producer batches them), then wait for all
        # acknowledgements: only then may the source offsets be committed.
        pending = [await self.send(o.topic, o.key, o.value, o.headers) for o in outgoing]
        await asyncio.gather(*pending)
        self.metrics.predictions.inc(len(labels))
        self.metrics.observe_labels(labels)
        return outgoing


__all__ = ["BatchHandler", "Outgoing", "RawMessage", "prediction_for"]
