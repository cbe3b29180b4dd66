"""Errors raised on purpose by the producer; each message says what to do."""

from __future__ import annotations

from spoiler_common.exceptions import SpoilerStreamError


class ProducerError(SpoilerStreamError):
    """Root of the producer's own errors."""


class InputFileError(ProducerError):
    """The input file is missing or unreadable."""


class BrokerUnavailable(ProducerError):
    """Kafka cannot be reached, or the topics to write to do not exist."""


class StrictStop(ProducerError):
    """`--strict` and a bad record: the replay stops at it."""


class UnsupportedScenario(ProducerError):
    """A drift scenario that cannot be applied to a dataset file (it needs synthetic text)."""
