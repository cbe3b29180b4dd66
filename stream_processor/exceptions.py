"""Errors the stream worker raises on purpose."""

from __future__ import annotations

from spoiler_common.exceptions import SpoilerStreamError


class WorkerError(SpoilerStreamError):
    """Root of the worker's own errors."""


class ModelLoadError(WorkerError):
    """A bundle could not be loaded; the message says which path and why."""


class BadRequest(WorkerError):
    """An HTTP request body is not what the endpoint accepts (turned into a 4xx at the edge)."""


class DeliveryFailed(WorkerError):
    """Kafka did not confirm a batch's predictions/dead letters: it must not be acknowledged."""


class BatchAbandoned(WorkerError):
    """The worker stopped while a batch waited (failing model, resend backoff): not acked."""


__all__ = ["BadRequest", "BatchAbandoned", "DeliveryFailed", "ModelLoadError", "WorkerError"]
