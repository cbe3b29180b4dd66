"""The native stack's errors; the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from spoiler_common.exceptions import SpoilerStreamError


class StackError(SpoilerStreamError):
    """A native-stack service could not be started or stopped; the message says why."""


__all__ = ["StackError"]
