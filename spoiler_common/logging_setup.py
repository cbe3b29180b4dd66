"""Logging configured once, by entry points only."""

from __future__ import annotations

import logging
import sys

from spoiler_common.exceptions import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure_logging(level: str = "INFO") -> None:
    """Short sentence plus key=value context, one line per event, to stderr."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # librdkafka and aiokafka are chatty at INFO about routine rebalances.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def set_level(level: str) -> None:
    """Change the level once configured (a command's `--log-level` or `*_LOG_LEVEL`)."""
    if level.upper() not in LEVELS:
        raise ConfigError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    logging.getLogger().setLevel(level.upper())
