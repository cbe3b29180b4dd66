"""Errors raised on purpose by the sink."""

from __future__ import annotations

from spoiler_common.exceptions import SpoilerStreamError


class SinkError(SpoilerStreamError):
    """Root of the sink's own errors."""


class MigrationError(SinkError):
    """A migration failed, or an applied one was edited afterwards."""


class DatabaseUnavailable(SinkError):
    """PostgreSQL cannot be reached or refused a transaction; retrying may help."""


class DeadLetterUnavailable(SinkError):
    """A dead letter could not be published; the batch is retried, offsets stay uncommitted."""
