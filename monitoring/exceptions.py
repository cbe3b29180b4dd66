"""Errors of the monitor; all derive from the project's root error."""

from __future__ import annotations

from spoiler_common.exceptions import SpoilerStreamError


class MonitorError(SpoilerStreamError):
    """The monitor cannot do its job; the message says what to fix."""


class ReferenceError_(MonitorError):
    """The bundle's `reference` block is missing or malformed."""


class GrafanaError(MonitorError):
    """Grafana refused a request or could not be reached."""


__all__ = ["GrafanaError", "MonitorError", "ReferenceError_"]
