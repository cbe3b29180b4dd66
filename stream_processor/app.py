"""The Faust app: one agent that micro-batches the reviews topic through the model.

`build_worker` is the one bootstrap function: settings in, a wired StreamWorker
out (Faust app, model, metrics, inference thread, HTTP views). Nothing happens
at import time.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from spoiler_common.batching import BatchPolicy
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import topic_name
from stream_processor.broker import broker_credentials, broker_urls
from stream_processor.exceptions import WorkerError
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import Loader, ModelHolder, ReloadResult, runtime_loader
from stream_processor.processing import BatchHandler, FaultHook, Headers, RawMessage, RetryPolicy
from stream_processor.settings import WorkerSettings
from stream_processor.shadow import ShadowScorer, low_priority, shadow_executor
from stream_processor.web import ConcurrencyGate, register_views

log = logging.getLogger(__name__)

# Exit status of a worker that stopped because a batch could not be delivered; the
# group re-delivers the batch to whoever owns its partitions next.
EXIT_UNDELIVERED = 3

# Raw bytes in, raw bytes out: the shared contract is the only validator.
RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def faust_settings(settings: WorkerSettings, kafka: KafkaSettings) -> dict[str, Any]:
    """Faust configuration: at-least-once, no internal topics, our web server."""
    return {
        "broker": broker_urls(kafka),
        "broker_credentials": broker_credentials(kafka),
        # Faust's exactly_once has open bugs; the sink's upsert makes replays harmless.
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": settings.commit_interval_s,
        # Topics come from spoiler_common/topics.yaml; the worker must not create
        # or alter any (no tables, no leader election topic).
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": max(1.0, settings.session_timeout_s / 5),
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "producer_acks": -1,
        "producer_max_request_size": max(1_048_576, settings.max_dead_letter_bytes + 65_536),
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_metrics_enabled": False,
        "datadir": str(settings.datadir),
        "autodiscover": False,
        "stream_wait_empty": True,
    }


def load_fault_hook(path: str | None) -> FaultHook | None:
    """`module:function` → the function (SPOILER_WORKER_FAULT_HOOK, for fault-injection tests)."""
    if not path:
        return None
    module, _, name = path.partition(":")
    try:
        hook = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise WorkerError(
            f"SPOILER_WORKER_FAULT_HOOK={path!r} cannot be loaded ({exc}); it must be "
            "'module:function' (tests only: leave it unset)"
        ) from exc
    log.warning("Fault hook installed (tests only) hook=%s", path)
    return hook  # type: ignore[no-any-return]


def model_text(summary: str, text: str) -> str:
    from spoiler_common.model_runtime import model_text as shared

    return shared(summary, text)  # type: ignore[no-any-return]


class StreamWorker:
    """Everything one worker process runs, wired once."""

    def __init__(
        self,
        settings: WorkerSettings,
        kafka: KafkaSettings,
        *,
        loader: Loader = runtime_loader,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.metrics = WorkerMetrics()
        # One inference thread: onnxruntime gets `threads` cores, the event
        # loop (heartbeats, HTTP) stays free.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        # /predict has its own thread (onnxruntime sessions are safe to run from two
        # threads), so a large request never queues in front of the stream's batches;
        # at most `predict_concurrency` requests wait for it, the rest get a 429.
        self.predict_executor = ThreadPoolExecutor(max_workers=1,
                                                   thread_name_prefix="predict")
        self.predict_gate = ConcurrencyGate(settings.predict_concurrency)
        if loader is runtime_loader:
            loader = functools.partial(runtime_loader, batching=BatchPolicy(
                settings.model_batch_texts, settings.model_padding_waste))
        self.holder = ModelHolder(
            settings.bundle_path, variant=settings.variant, threads=settings.threads,
            loader=loader, on_change=lambda m: self.metrics.set_model(m.name, m.version),
        )
        self.app = faust.App(settings.app_id, **faust_settings(settings, kafka))
        prefix = kafka.topic_prefix
        self.reviews_topic = topic_name("reviews", prefix)
        fault_hook = load_fault_hook(settings.fault_hook)
        self.shadow = self._shadow_scorer(loader, fault_hook)
        self.handler = BatchHandler(
            holder=self.holder, metrics=self.metrics, executor=self.executor, send=self._send,
            text_of=model_text,
            predictions_topic=topic_name("predictions", prefix),
            dead_letters_topic=topic_name("dead_letters", prefix),
            max_dead_letter_bytes=settings.max_dead_letter_bytes,
            retry=RetryPolicy(settings.retry_initial_s, settings.retry_max_s,
                              settings.send_attempts),
            fault_hook=fault_hook,
            shadow=self.shadow,
            shadow_topic=topic_name("shadow_predictions", prefix),
        )
        self._agent_running = False
        self._agent_error: str | None = None
        self._reloads: set[asyncio.Future[None]] = set()
        self._wire()

    def _shadow_scorer(self, loader: Loader, fault_hook: FaultHook | None) -> ShadowScorer | None:
        """The challenger scored in shadow, with its own inference thread (None: off)."""
        settings = self.settings
        if settings.challenger_path is None:
            return None
        holder = ModelHolder(
            settings.challenger_path, variant=settings.variant, threads=settings.threads,
            loader=low_priority(loader), setting="SPOILER_WORKER_CHALLENGER_PATH",
            on_change=lambda m: self.metrics.set_challenger(m.name, m.version),
            role="challenger",
        )
        return ShadowScorer(holder, share=settings.challenger_share, executor=shadow_executor(),
                            metrics=self.metrics, fault_hook=fault_hook)

    async def _send(self, topic: str, key: bytes | None, value: bytes,
                    headers: Headers) -> Any:
        return await self.app.producer.send(topic, key, value, None, None, headers)

    def _wire(self) -> None:
        app, settings = self.app, self.settings
        source = app.topic(self.reviews_topic, **RAW)  # type: ignore[arg-type]

        @app.agent(source, name="predict-reviews", concurrency=1)
        async def predict_reviews(stream: Any) -> None:
            self._agent_running = True
            try:
                # take_events acks every event of a batch in a `finally` when the
                # loop body returns, raises or is cancelled (faust/streams.py): an
                # exception escaping this body would ack, and later commit, an
                # undelivered batch. So nothing escapes: _handle_to_completion
                # either delivers the batch or ends the process before the ack.
                async for events in stream.take_events(
                    settings.batch_size, within=settings.batch_wait_ms / 1000.0
                ):
                    await self._handle_to_completion(events)
            finally:
                self._agent_running = False

        if settings.reload_poll_s > 0:
            @app.timer(interval=settings.reload_poll_s)
            async def watch_bundle() -> None:
                if self.holder.ready and self.holder.changed_on_disk():
                    await self.reload(force=False, reason="bundle changed on disk")
                # The challenger is tried again whenever its bundle changes, loaded or not.
                if self.shadow is not None and self.shadow.holder.changed_on_disk():
                    await self.reload_challenger(force=False, reason="bundle changed on disk")

        @app.task
        async def on_started() -> None:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            log.info(
                "Worker started app_id=%s source=%s batch_size=%d batch_wait_ms=%.0f "
                "model_version=%s web=http://%s:%d",
                settings.app_id, self.reviews_topic, settings.batch_size,
                settings.batch_wait_ms, self.holder.current.version,
                settings.web_host, settings.web_port,
            )

        register_views(app, self)

    async def _handle_to_completion(self, events: list[Any]) -> None:
        """Deliver a batch, or stop the process before Faust can acknowledge it.

        On shutdown (cancellation) the batch in flight is finished first: it is
        shielded, so a stop request waits for its predictions to be acknowledged,
        and Faust then commits the acked offsets as it stops. A batch that cannot
        be delivered (Kafka does not confirm it, or the worker stops while the
        model is failing) ends the process at once, unacknowledged, so the
        consumer group re-delivers it.
        """
        messages = [
            RawMessage(
                key=e.message.key, value=e.message.value, topic=e.message.topic,
                partition=e.message.partition, offset=e.message.offset,
                timestamp=e.message.timestamp,
            )
            for e in events
        ]
        task = asyncio.ensure_future(self.handler.handle(messages))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            log.info("Stopping: finishing the batch in flight size=%d", len(messages))
            self.handler.stopping.set()
            try:
                await task
            except BaseException as exc:
                self._abort(messages, exc)
            for event in events:
                event.ack()
            raise
        except BaseException as exc:
            self._abort(messages, exc)

    def _abort(self, messages: list[RawMessage], exc: BaseException) -> None:
        """End the process now: no ack, no commit; the batch is re-delivered."""
        first = messages[0] if messages else None
        where = (f"topic={first.topic} partition={first.partition} offset={first.offset}"
                 if first else "")
        self._agent_error = f"{type(exc).__name__}: {exc}"
        log.critical("Batch not delivered; exiting without acknowledging it so the group "
                     "re-delivers it size=%d first %s: %s: %s", len(messages), where,
                     type(exc).__name__, exc, exc_info=exc)
        for handler in logging.getLogger().handlers:
            handler.flush()
        # os._exit, not an exception: an exception would run take_events' `finally`,
        # which acknowledges the batch (see the agent above).
        os._exit(EXIT_UNDELIVERED)

    def _on_sighup(self) -> None:
        # Kept until done: the loop holds tasks only weakly.
        self._reloads.add(asyncio.ensure_future(self._reload_both("SIGHUP")))
        self._reloads = {task for task in self._reloads if not task.done()}

    async def _reload_both(self, reason: str) -> None:
        await self.reload(force=True, reason=reason)
        await self.reload_challenger(force=True, reason=reason)

    async def reload(self, *, force: bool, reason: str) -> ReloadResult:
        result = await self.holder.reload(force=force, reason=reason)
        self.metrics.reloads.labels(result=result.outcome).inc()
        return result

    async def reload_challenger(self, *, force: bool, reason: str) -> ReloadResult | None:
        """Reload the challenger (None when shadow scoring is off); the champion is untouched."""
        if self.shadow is None:
            return None
        result = await self.shadow.holder.reload(force=force, reason=reason)
        if result.outcome == "failed" and not self.shadow.holder.ready:
            self.metrics.challenger_loaded.set(0)
        return result

    def health(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {"model_loaded": self.holder.ready}
        if self._agent_error:
            detail["error"] = self._agent_error
        return self._agent_error is None, detail

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        paused = self.handler.paused
        detail: dict[str, Any] = {
            "model_loaded": self.holder.ready,
            "consuming": self._agent_running and paused is None,
        }
        if paused is not None:
            detail["paused"] = paused
        if self.holder.ready:
            detail["model_version"] = self.holder.current.version
        try:
            detail["partitions"] = sorted(
                tp.partition for tp in self.app.consumer.assignment()
            )
        except Exception:  # consumer not started yet
            detail["partitions"] = []
        ready = self.holder.ready and self._agent_running and paused is None
        return ready and self._agent_error is None, detail

    def start_model(self) -> None:
        """Load the model before joining the group: a worker without one must not consume.

        The challenger is optional: one that does not load is logged and tried again
        when its bundle changes; the worker starts either way.
        """
        self.holder.load_initial()
        if self.shadow is not None:
            self.shadow.holder.try_load_initial()


def build_worker(
    settings: WorkerSettings | None = None,
    kafka: KafkaSettings | None = None,
    *,
    loader: Loader = runtime_loader,
) -> StreamWorker:
    """The bootstrap: settings (from the environment unless given) → a wired worker."""
    return StreamWorker(settings or WorkerSettings(), kafka or KafkaSettings(), loader=loader)


__all__ = ["StreamWorker", "build_worker", "faust_settings"]
