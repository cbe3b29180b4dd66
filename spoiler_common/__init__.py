"""Shared package of spoiler-stream: message contracts, topics, settings, Kafka helpers.

Every service depends on this package and on nothing else of the project.
"""

from spoiler_common.contracts import (
    DeadLetter,
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    dead_letter_for,
    decode,
    encode,
)
from spoiler_common.exceptions import ConfigError, ContractError, SpoilerStreamError
from spoiler_common.topics import topic_name, topic_specs

__all__ = [
    "ConfigError",
    "ContractError",
    "DeadLetter",
    "LabelArrived",
    "ReviewPublished",
    "SpoilerPredicted",
    "SpoilerStreamError",
    "dead_letter_for",
    "decode",
    "encode",
    "topic_name",
    "topic_specs",
]
