"""One root error for the whole project, so callers can catch ours and only ours."""

from __future__ import annotations


class SpoilerStreamError(Exception):
    """Root of every error raised on purpose by spoiler-stream code."""


class ConfigError(SpoilerStreamError):
    """A setting is missing or invalid; the message names the variable to fix."""


class ContractError(SpoilerStreamError):
    """A message does not satisfy its topic's contract.

    `reason` is a short, stable code (used as a metric label and stored in dead
    letters); `field`, `expected` and `got` make the human message precise.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        field: str | None = None,
        expected: str | None = None,
        got: str | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.reason}: {self.args[0]}"


class TopicSpecError(SpoilerStreamError):
    """A topic exists with a configuration that differs from the declared spec."""


class ModelBundleError(SpoilerStreamError):
    """A model bundle is missing files, is from an incompatible version, or fails to load."""
