"""The Faust app: one agent that micro-batches the reviews topic through the model.

`build_worker` is the one bootstrap function: settings in, a wired StreamWorker
out (Faust app, model, metrics, inference thread, HTTP views). Nothing happens
at import time.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import topic_name
from stream_processor.broker import broker_credentials, broker_urls
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import Loader, ModelHolder, ReloadResult, runtime_loader
from stream_processor.processing import BatchHandler, Headers, RawMessage
from stream_processor.settings import WorkerSettings
from stream_processor.web import register_views

log = logging.getLogger(__name__)

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
        self.holder = ModelHolder(
            settings.bundle_path, variant=settings.variant, threads=settings.threads,
            loader=loader, on_change=lambda m: self.metrics.set_model(m.name, m.version),
        )
        self.app = faust.App(settings.app_id, **faust_settings(settings, kafka))
        prefix = kafka.topic_prefix
        self.reviews_topic = topic_name("reviews", prefix)
        self.handler = BatchHandler(
            holder=self.holder, metrics=self.metrics, executor=self.executor, send=self._send,
            text_of=model_text,
            predictions_topic=topic_name("predictions", prefix),
            dead_letters_topic=topic_name("dead_letters", prefix),
            max_dead_letter_bytes=settings.max_dead_letter_bytes,
        )
        self._agent_running = False
        self._agent_error: str | None = None
        self._wire()

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
                async for events in stream.take_events(
                    settings.batch_size, within=settings.batch_wait_ms / 1000.0
                ):
                    await self._handle_to_completion(events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._agent_error = f"{type(exc).__name__}: {exc}"
                log.exception("Stream agent crashed; the worker will stop")
                raise
            finally:
                self._agent_running = False

        if settings.reload_poll_s > 0:
            @app.timer(interval=settings.reload_poll_s)
            async def watch_bundle() -> None:
                if self.holder.ready and self.holder.changed_on_disk():
                    await self.reload(force=False, reason="bundle changed on disk")

        @app.task
        async def on_started() -> None:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(
                signal.SIGHUP,
                lambda: asyncio.ensure_future(self.reload(force=True, reason="SIGHUP")),
            )
            log.info(
                "Worker started app_id=%s source=%s batch_size=%d batch_wait_ms=%.0f "
                "model_version=%s web=http://%s:%d",
                settings.app_id, self.reviews_topic, settings.batch_size,
                settings.batch_wait_ms, self.holder.current.version,
                settings.web_host, settings.web_port,
            )

        register_views(self)

    async def _handle_to_completion(self, events: list[Any]) -> None:
        """Handle a batch; on shutdown (cancellation) finish it before stopping.

        The batch is shielded, so a stop request waits for its predictions to be
        acknowledged; Faust then commits the acked offsets as it stops.
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
            await task
            for event in events:
                event.ack()
            raise

    async def reload(self, *, force: bool, reason: str) -> ReloadResult:
        result = await self.holder.reload(force=force, reason=reason)
        self.metrics.reloads.labels(result=result.outcome).inc()
        return result

    def health(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {"model_loaded": self.holder.ready}
        if self._agent_error:
            detail["error"] = self._agent_error
        return self._agent_error is None, detail

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {
            "model_loaded": self.holder.ready,
            "consuming": self._agent_running,
        }
        if self.holder.ready:
            detail["model_version"] = self.holder.current.version
        try:
            detail["partitions"] = sorted(
                tp.partition for tp in self.app.consumer.assignment()
            )
        except Exception:  # consumer not started yet
            detail["partitions"] = []
        return self.holder.ready and self._agent_running and self._agent_error is None, detail

    def start_model(self) -> None:
        """Load the model before joining the group: a worker without one must not consume."""
        self.holder.load_initial()


def build_worker(
    settings: WorkerSettings | None = None,
    kafka: KafkaSettings | None = None,
    *,
    loader: Loader = runtime_loader,
) -> StreamWorker:
    """The bootstrap: settings (from the environment unless given) → a wired worker."""
    return StreamWorker(settings or WorkerSettings(), kafka or KafkaSettings(), loader=loader)


__all__ = ["StreamWorker", "build_worker", "faust_settings"]
