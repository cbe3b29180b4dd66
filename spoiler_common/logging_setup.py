"""Logging configured once, by entry points only."""

from __future__ import annotations

import logging
import sys


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
