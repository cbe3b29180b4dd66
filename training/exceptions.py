"""Errors of the training pipeline; each message names the cause and the fix."""

from __future__ import annotations

from spoiler_common.exceptions import SpoilerStreamError


class TrainingError(SpoilerStreamError):
    """Root of the training pipeline's errors."""


class DataError(TrainingError):
    """The input data cannot be used (missing columns, empty texts, one class only)."""


class BaseModelError(TrainingError):
    """The base model cannot be loaded (missing path, hub name while offline)."""


class ParityGateError(TrainingError):
    """An exported model disagrees with its source beyond the allowed tolerance."""


class RegistryError(TrainingError):
    """MLflow tracking or registry failed (unknown version, unreachable server)."""


class BaselineGateError(TrainingError):
    """The model scores worse than the simple baseline on the same split."""


class CollectError(TrainingError):
    """The labelled reviews cannot be read from PostgreSQL (unreachable, not migrated)."""


class PromotionError(TrainingError):
    """A bundle cannot be promoted or rolled back (fails to load, fails its parity gate)."""
