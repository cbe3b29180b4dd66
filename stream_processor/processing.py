"""From one batch of raw messages to the messages to send: predictions and dead letters.

`BatchHandler.handle` is the whole per-batch policy:
1. decode each message with the shared contract; a failure becomes a dead letter
   with the contract's reason, and anything else a message makes the code raise
   becomes one with reason ``internal_error`` (the per-message boundary);
2. run the model once for the valid ones, in the inference thread; a text the
   model fails on alone is dead-lettered (``inference_error``), but a model that
   fails on every text (and on a known-good one) pauses the batch and retries it
   with backoff: a broken model must not turn the stream into dead letters;
3. send predictions and dead letters in input order and wait until Kafka has
   acknowledged all of them, retrying failed sends; only then does the caller
   ack (and later commit) the source offsets. When the batch cannot be
   delivered, `handle` raises and the caller stops the process without acking,
   so the group re-delivers the batch: at least once, never acked undelivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from spoiler_common.contracts import ReviewPublished, SpoilerPredicted, encode, headers_for
from spoiler_common.dead_letters import DeadLetterReason, build_dead_letter
from stream_processor.exceptions import BatchAbandoned, DeliveryFailed
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import Model, ModelHolder
from stream_processor.prediction import prediction_for
from stream_processor.shadow import ShadowItem, ShadowScorer
from stream_processor.validation import SERVICE, RecentIds, parse_review

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
Send = Callable[[str, bytes | None, bytes, Headers], Awaitable[Awaitable[object]]]
TextOf = Callable[[str, str], str]
# Test seam (SPOILER_WORKER_FAULT_HOOK): called as hook("process", RawMessage) before
# each message is handled, hook("predict", texts) before each model call (raising there
# is the model failing), hook("shadow_predict", texts) before each challenger call and
# hook("send", Outgoing) before each send; may raise.
FaultHook = Callable[[str, object], None]
# A text every working model scores: tells "the model is broken" from "these texts are".
CANARY_TEXT = "A fine film with a good cast. I enjoyed it."
# A dead letter that could not be sent is sent again this small (the original stays in
# its topic at the recorded offset).
_FALLBACK_DEAD_LETTER_BYTES = 16_384


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
    source: RawMessage | None = None
    prediction: SpoilerPredicted | None = None
    # A challenger's prediction: best effort, never dead-letters or stops anything.
    shadow: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for a failing model and for failed sends; `send_attempts` before giving up."""

    initial_s: float = 0.5
    max_s: float = 30.0
    send_attempts: int = 5

    def delay(self, attempt: int) -> float:
        return float(min(self.max_s, self.initial_s * 2 ** (attempt - 1)))


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
        retry: RetryPolicy | None = None,
        fault_hook: FaultHook | None = None,
        shadow: ShadowScorer | None = None,
        shadow_topic: str | None = None,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        self.executor = executor
        self.send = send
        self.text_of = text_of
        self.predictions_topic = predictions_topic
        self.dead_letters_topic = dead_letters_topic
        self.max_dead_letter_bytes = max_dead_letter_bytes
        self.retry = retry or RetryPolicy()
        self.fault_hook = fault_hook
        if shadow is not None and not shadow_topic:
            raise ValueError("shadow scoring needs the shadow-predictions topic")
        self.shadow = shadow
        self.shadow_topic = shadow_topic or ""
        self.recent = RecentIds()
        # Set while the batch waits for a failing model (readiness fails meanwhile).
        self.paused: str | None = None
        # Set when the worker stops: waits end and the batch in hand is abandoned.
        self.stopping = asyncio.Event()

    # ---- dead letters ------------------------------------------------------------------

    def _dead_letter(self, msg: RawMessage, error: BaseException | str,
                     reason: str | None = None, max_bytes: int | None = None) -> Outgoing:
        letter, value = build_dead_letter(
            service=SERVICE, error=error, reason=reason, value=msg.value, key=msg.key,
            source_topic=msg.topic, partition=msg.partition, offset=msg.offset,
            max_bytes=max_bytes or self.max_dead_letter_bytes,
        )
        self.metrics.dead_letters.labels(reason=letter.reason).inc()
        if letter.reason == DeadLetterReason.INTERNAL_ERROR:
            log.error("Message made the worker fail; dead-lettering it reason=internal_error "
                      "topic=%s partition=%s offset=%s error=%s", msg.topic, msg.partition,
                      msg.offset, letter.error[:300],
                      exc_info=error if isinstance(error, BaseException) else None)
        else:
            log.warning(
                "Dead letter reason=%s topic=%s partition=%s offset=%s error=%s",
                letter.reason, msg.topic, msg.partition, msg.offset, letter.error[:200],
            )
        return Outgoing(self.dead_letters_topic, msg.key, value, headers_for(letter, SERVICE),
                        source=msg)

    # ---- the model -----------------------------------------------------------------------

    async def _predict(self, model: Model, texts: list[str]) -> tuple[list[object], float]:
        """Run the model in the inference thread; per-text results or the exception."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            if self.fault_hook is not None:
                self.fault_hook("predict", texts)
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
            log.warning("Batch inference failed; retrying one by one size=%d: %s: %s",
                        len(texts), type(exc).__name__, exc)
            out = []
            for text in texts:
                single, _ = await self._predict(model, [text])
                out.extend(single)
        return out, time.perf_counter() - started

    async def _model_works(self, model: Model) -> bool:
        results, _ = await self._predict(model, [CANARY_TEXT])
        return not isinstance(results[0], BaseException)

    async def _wait(self, seconds: float) -> None:
        """Sleep, unless the worker stops meanwhile: then abandon the batch."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return
        raise BatchAbandoned("the worker is stopping; the batch stays unacknowledged")

    async def _predict_until_model_works(
        self, texts: list[str]
    ) -> tuple[Model, list[object], float]:
        """Predict; while the model fails on every text and on the canary, pause and retry."""
        attempt = 0
        while True:
            model = self.holder.current  # re-read: a reload may fix it
            results, seconds = await self._predict(model, texts)
            if not all(isinstance(r, BaseException) for r in results) \
                    or await self._model_works(model):
                if attempt:
                    log.info("Model works again after %d attempts; consuming model_version=%s",
                             attempt + 1, model.version)
                self.paused = None
                self.metrics.model_failing.set(0)
                return model, results, seconds
            attempt += 1
            delay = self.retry.delay(attempt)
            error = results[0]
            self.paused = (f"model {model.version} fails on every text "
                           f"({type(error).__name__}: {error}); retry {attempt} in {delay:.0f}s")
            self.metrics.model_failing.set(1)
            self.metrics.batch_retries.labels(stage="model").inc()
            log.error("Model fails on every text of the batch and on a known-good one; not "
                      "consuming, retrying in %.1fs attempt=%d model_version=%s error=%s: %s",
                      delay, attempt, model.version, type(error).__name__, error)
            await self._wait(delay)

    # ---- the batch -----------------------------------------------------------------------

    async def handle(self, messages: Sequence[RawMessage]) -> list[Outgoing]:
        """Process one batch; returns after Kafka acknowledged every message sent.

        Raises DeliveryFailed or BatchAbandoned when the batch was not delivered:
        the caller must then not acknowledge it.
        """
        batch_start = time.time()
        self.metrics.messages_in.inc(len(messages))
        slots: list[Outgoing | int] = []  # dead letter, or index into `valid`
        valid: list[tuple[RawMessage, ReviewPublished]] = []
        texts: list[str] = []
        for msg in messages:
            try:
                if self.fault_hook is not None:
                    self.fault_hook("process", msg)
                review = parse_review(msg.key, msg.value)
                text = self.text_of(review.review_summary, review.review_text)
            except Exception as exc:  # ContractError: its reason; anything else: internal
                slots.append(self._dead_letter(msg, exc))
                continue
            slots.append(len(valid))
            valid.append((msg, review))
            texts.append(text)

        results: list[object] = []
        shadow_task = self._start_shadow(valid, texts, batch_start)
        if valid:
            # One model per batch: reloads land between batches.
            try:
                model, results, seconds = await self._predict_until_model_works(texts)
            except BaseException:
                if shadow_task is not None:
                    shadow_task.cancel()
                raise
            self.metrics.batch_size.observe(len(valid))
            self.metrics.inference_seconds.observe(seconds)
            predicted_at = datetime.now(UTC)
            per_review_ms = seconds * 1000.0 / len(valid)

        outgoing: list[Outgoing] = []
        for slot in slots:
            if isinstance(slot, Outgoing):
                outgoing.append(slot)
                continue
            msg, review = valid[slot]
            result = results[slot]
            if isinstance(result, BaseException):
                outgoing.append(self._dead_letter(
                    msg, f"model failed on this review: {type(result).__name__}: {result}",
                    reason=DeadLetterReason.INFERENCE_ERROR,
                ))
                continue
            try:
                probability, input_tokens, unknown_tokens = cast(tuple[float, int, int], result)
                prediction = prediction_for(
                    review, model=model, probability=probability, input_tokens=input_tokens,
                    unknown_tokens=unknown_tokens, inference_ms=per_review_ms,
                    queue_ms=(batch_start - msg.timestamp) * 1000.0, predicted_at=predicted_at,
                )
                value = encode(prediction)
            except Exception as exc:  # the per-message boundary, after the model
                outgoing.append(self._dead_letter(msg, exc))
                continue
            outgoing.append(Outgoing(
                self.predictions_topic, msg.key, value, headers_for(prediction, SERVICE),
                source=msg, prediction=prediction,
            ))
            if self.recent.seen(review.review_id):
                self.metrics.duplicates.inc()
        if shadow_task is not None:
            # Only beside a champion prediction: a review the champion dead-lettered is
            # not processed (its replay scores both again), and a lone shadow row pairs
            # with nothing.
            predicted = {o.prediction.review_id for o in outgoing if o.prediction is not None}
            outgoing += [o for o in await self._shadow_outgoing(shadow_task, valid)
                         if o.prediction is not None and o.prediction.review_id in predicted]

        sent = await self._deliver(outgoing)
        predictions = [o.prediction for o in sent if o.prediction is not None and not o.shadow]
        for p in predictions:
            self.metrics.score.observe(p.spoiler_probability)
            self.metrics.end_to_end_seconds.observe(p.end_to_end_ms / 1000.0)
        self.metrics.predictions.inc(len(predictions))
        self.metrics.observe_labels([p.is_spoiler for p in predictions])
        self.metrics.challenger_predictions.inc(sum(o.shadow for o in sent))
        return sent

    # ---- shadow scoring ------------------------------------------------------------------

    def _start_shadow(
        self, valid: list[tuple[RawMessage, ReviewPublished]], texts: list[str],
        batch_start: float,
    ) -> asyncio.Task[list[SpoilerPredicted]] | None:
        """Start the challenger on the batch, concurrently with the champion (or None)."""
        if self.shadow is None or not valid or not self.holder.ready:
            return None
        items = [ShadowItem(review, text, (batch_start - msg.timestamp) * 1000.0)
                 for (msg, review), text in zip(valid, texts, strict=True)]
        return asyncio.ensure_future(self.shadow.score(self.holder.current, items))

    async def _shadow_outgoing(
        self, task: asyncio.Task[list[SpoilerPredicted]],
        valid: list[tuple[RawMessage, ReviewPublished]],
    ) -> list[Outgoing]:
        """The challenger's predictions as messages for the shadow topic (best effort)."""
        try:
            predictions = await task
        except Exception:  # score() never raises; this only guards the champion's batch
            log.exception("Shadow scoring failed; the champion's batch goes on")
            return []
        sources = {review.review_id: msg for msg, review in valid}
        out: list[Outgoing] = []
        for p in predictions:
            msg = sources[p.review_id]
            try:
                out.append(Outgoing(self.shadow_topic, msg.key, encode(p),
                                    headers_for(p, SERVICE), source=msg, prediction=p,
                                    shadow=True))
            except Exception as exc:
                assert self.shadow is not None
                self.shadow.send_failed(p.review_id, exc)
        return out

    # ---- delivery ----------------------------------------------------------------------

    async def _send_all(self, items: list[Outgoing]) -> list[tuple[Outgoing, BaseException]]:
        """Send every item, then await every acknowledgement; the ones that failed."""
        failed: list[tuple[Outgoing, BaseException]] = []
        waiting: list[tuple[Outgoing, Awaitable[object]]] = []
        # Send everything first (the producer batches them), then wait for all acks.
        for item in items:
            try:
                if self.fault_hook is not None:
                    self.fault_hook("send", item)
                waiting.append((item, await self.send(item.topic, item.key, item.value,
                                                      item.headers)))
            except Exception as exc:
                failed.append((item, exc))
        acks = await asyncio.gather(*(ack for _, ack in waiting), return_exceptions=True)
        failed += [(item, ack) for (item, _), ack in zip(waiting, acks, strict=True)
                   if isinstance(ack, BaseException)]
        return failed

    async def _deliver(self, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Send until Kafka confirmed every message (returns what was sent), or raise.

        Failed sends are retried with backoff. When the broker takes the batch's
        other messages but keeps refusing one, that one is replaced by a small dead
        letter saying why, so one unsendable message cannot stop the stream. When
        it takes nothing, DeliveryFailed: the caller stops without acknowledging.
        """
        done: list[Outgoing] = []
        order = {id(item): i for i, item in enumerate(outgoing)}
        todo, attempt, replaced = list(outgoing), 0, False
        delivered_any = False
        while todo:
            failed = await self._send_all(todo)
            refused = {id(item) for item, _ in failed}
            done += [item for item in todo if id(item) not in refused]
            delivered_any = delivered_any or len(failed) < len(todo)
            if not failed:
                break
            attempt += 1
            first = failed[0][1]
            self.metrics.batch_retries.labels(stage="send").inc()
            if attempt >= self.retry.send_attempts:
                if replaced or not delivered_any:
                    raise DeliveryFailed(
                        f"{len(failed)} of {len(outgoing)} messages not confirmed by Kafka "
                        f"after {attempt} attempts: {type(first).__name__}: {first}"
                    )
                # Kafka takes this batch's other messages: these ones are the problem.
                todo, attempt, replaced = [], 0, True
                for item, error in failed:
                    if item.shadow and self.shadow is not None and item.prediction is not None:
                        # A shadow prediction is not worth a dead letter: drop and count it.
                        self.shadow.send_failed(item.prediction.review_id, error)
                        continue
                    todo.append(self._unsendable(item, error))
                    order[id(todo[-1])] = order[id(item)]
                continue
            delay = self.retry.delay(attempt)
            log.warning("Kafka did not confirm %d of %d messages; resending in %.1fs attempt=%d: "
                        "%s: %s", len(failed), len(outgoing), delay, attempt,
                        type(first).__name__, first)
            await self._wait(delay)
            todo = [item for item, _ in failed]
        return sorted(done, key=lambda item: order[id(item)])

    def _unsendable(self, item: Outgoing, error: BaseException) -> Outgoing:
        """A small dead letter in place of a message Kafka keeps refusing."""
        if item.source is None:
            return item
        log.error("Kafka keeps refusing a message while taking others; dead-lettering its "
                  "review topic=%s partition=%s offset=%s error=%s: %s", item.source.topic,
                  item.source.partition, item.source.offset, type(error).__name__, error)
        return self._dead_letter(
            item.source, f"could not publish to {item.topic}: {type(error).__name__}: {error}",
            reason=DeadLetterReason.INTERNAL_ERROR, max_bytes=_FALLBACK_DEAD_LETTER_BYTES,
        )


__all__ = ["BatchHandler", "Outgoing", "RawMessage", "RetryPolicy", "prediction_for"]
