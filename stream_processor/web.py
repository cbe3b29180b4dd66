"""HTTP endpoints on Faust's web server: /predict, /model, /model/reload, /healthz, /readyz,
/metrics.

Domain errors become HTTP codes here and only here. The views see the worker only
through :class:`WebBackend`, what they need of it, so this module does not import
the app that registers them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import Executor
from typing import Any, Protocol

import faust
from faust.web import Request, Response, View

from stream_processor.exceptions import BadRequest
from stream_processor.metrics import WorkerMetrics
from stream_processor.model_holder import ModelHolder, ReloadResult
from stream_processor.settings import WorkerSettings
from stream_processor.shadow import ShadowScorer

log = logging.getLogger(__name__)

# Prometheus' text format; aiohttp takes the charset separately (utf-8 is its default).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


def parse_predict_body(data: Any, *, max_texts: int, max_chars: int) -> tuple[list[str], bool]:
    """Texts to score from `{"text": ...}`, `{"texts": [...]}` or `[...]`; and whether one.

    Raises BadRequest naming what was wrong.
    """
    single = False
    if isinstance(data, dict) and "text" in data:
        texts, single = [data["text"]], True
    elif isinstance(data, dict) and "texts" in data:
        texts = data["texts"]
    elif isinstance(data, list):
        texts = data
    else:
        raise BadRequest('body must be {"text": "..."}, {"texts": ["...", ...]} or a JSON list')
    if not isinstance(texts, list) or not texts:
        raise BadRequest('"texts" must be a non-empty list of strings')
    if len(texts) > max_texts:
        raise BadRequest(f"at most {max_texts} texts per request, got {len(texts)}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(f"text {i} is a {type(text).__name__}, expected a string")
        if not text.strip():
            raise BadRequest(f"text {i} is empty or whitespace only")
        if len(text) > max_chars:
            raise BadRequest(f"text {i} has {len(text)} characters, limit {max_chars}")
        if "\x00" in text:
            raise BadRequest(f"text {i} contains a NUL character")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(f"text {i} holds an unpaired surrogate (such as \\ud800), "
                                 "which is not valid Unicode") from None
    return texts, single


class ConcurrencyGate:
    """At most `limit` requests in flight; used on the event loop only (no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def try_enter(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1


def busy_body(gate: ConcurrencyGate) -> dict[str, Any]:
    """The 429 body: what is full, and what the caller can do."""
    return {"error": f"busy: {gate.in_flight} /predict requests are already in flight, the "
                     f"limit is {gate.limit} (SPOILER_WORKER_PREDICT_CONCURRENCY); retry after "
                     "a short wait, send fewer texts per request, or publish the reviews to the "
                     "reviews topic instead",
            "in_flight": gate.in_flight, "limit": gate.limit}


class WebBackend(Protocol):
    """What the views need of the worker (:class:`stream_processor.app.StreamWorker`)."""

    @property
    def settings(self) -> WorkerSettings: ...
    @property
    def holder(self) -> ModelHolder: ...
    @property
    def metrics(self) -> WorkerMetrics: ...
    @property
    def predict_executor(self) -> Executor:
        """Where `/predict` runs the model: its own thread, never the stream's or the loop."""
    @property
    def predict_gate(self) -> ConcurrencyGate: ...
    @property
    def shadow(self) -> ShadowScorer | None:
        """The challenger scored in shadow (None: off)."""

    def health(self) -> tuple[bool, dict[str, Any]]: ...
    def readiness(self) -> tuple[bool, dict[str, Any]]: ...
    async def reload(self, *, force: bool, reason: str) -> ReloadResult: ...
    async def reload_challenger(self, *, force: bool, reason: str) -> ReloadResult | None: ...


def model_info(holder: ModelHolder) -> dict[str, Any]:
    """The body of `GET /model`: the model served and where it came from."""
    model = holder.current
    return {
        "name": model.name,
        "version": model.version,
        "threshold": model.threshold,
        "max_length": model.max_length,
        "variant": holder.variant,
        "path": str(holder.path),
        "loaded_at": holder.loaded_at,
        "last_reload_error": holder.last_error,
        "metadata": model.metadata,
    }


def challenger_info(worker: WebBackend) -> dict[str, Any] | None:
    """`GET /model`'s `challenger`: the shadow model, its error, or None when off."""
    shadow = worker.shadow
    if shadow is None:
        return None
    if not shadow.holder.ready:
        return {"loaded": False, "path": str(shadow.holder.path),
                "last_reload_error": shadow.holder.last_error, "share": shadow.share}
    return {"loaded": True, "share": shadow.share, **model_info(shadow.holder)}


def reload_body(result: ReloadResult) -> dict[str, Any]:
    return {
        "result": result.outcome,
        "version": result.version,
        "previous_version": result.previous_version,
        "error": result.error,
        "seconds": result.seconds,
    }


def register_views(app: faust.App, worker: WebBackend) -> None:
    """Add the worker's pages to `app`'s web server."""
    @app.page("/predict")
    class Predict(View):
        async def post(self, request: Request) -> Response:
            try:
                try:
                    data = json.loads(await request.read())
                except (ValueError, UnicodeDecodeError) as exc:
                    raise BadRequest(f"body is not JSON: {exc}") from None
                texts, single = parse_predict_body(
                    data, max_texts=worker.settings.max_predict_texts,
                    max_chars=worker.settings.max_text_chars,
                )
            except BadRequest as exc:
                return self.json({"error": str(exc)}, status=422)
            if not worker.holder.ready:
                return self.json({"error": "no model loaded yet"}, status=503)
            gate = worker.predict_gate
            if not gate.try_enter():
                worker.metrics.predict_rejected.inc()
                return self.json(busy_body(gate), status=429, headers={"Retry-After": "1"})
            try:
                model = worker.holder.current
                started = time.perf_counter()
                loop = asyncio.get_running_loop()
                batch = await loop.run_in_executor(worker.predict_executor, model.predict, texts)
                seconds = time.perf_counter() - started
            finally:
                gate.leave()
            probabilities = [float(p) for p in batch.probabilities]
            body: dict[str, Any] = {
                "model_name": model.name,
                "model_version": model.version,
                "threshold": model.threshold,
                "probabilities": probabilities,
                "is_spoiler": [p >= model.threshold for p in probabilities],
                "input_tokens": [int(n) for n in batch.input_tokens],
                "unknown_tokens": [int(n) for n in batch.unknown_tokens],
                "inference_ms": seconds * 1000.0,
            }
            if single:
                body["probability"] = probabilities[0]
            return self.json(body)

    @app.page("/model")
    class ModelView(View):
        async def get(self, request: Request) -> Response:
            if not worker.holder.ready:
                return self.json({"error": "no model loaded yet"}, status=503)
            body = model_info(worker.holder)
            body["challenger"] = challenger_info(worker)
            return self.json(body)

    @app.page("/model/reload")
    class Reload(View):
        async def post(self, request: Request) -> Response:
            result = await worker.reload(force=True, reason="POST /model/reload")
            body = reload_body(result)
            challenger = await worker.reload_challenger(force=True, reason="POST /model/reload")
            if challenger is not None:
                # Reported beside the champion's, never in its status code.
                body["challenger"] = reload_body(challenger)
            return self.json(body, status=200 if result.outcome != "failed" else 409)

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            healthy, detail = worker.health()
            return self.json({"status": "ok" if healthy else "unhealthy", **detail},
                             status=200 if healthy else 503)

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready, detail = worker.readiness()
            return self.json({"status": "ready" if ready else "not ready", **detail},
                             status=200 if ready else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(worker.metrics.render(), content_type=METRICS_CONTENT_TYPE)


__all__ = ["ConcurrencyGate", "WebBackend", "busy_body", "model_info", "parse_predict_body",
           "register_views"]
