"""Shared package of spoiler-stream: message contracts, topics, settings, Kafka helpers.

Every service depends on this package and on nothing else of the project.
"""

from spoiler_common.contracts import (
    DeadLetter,
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    decode,
    decode_record,
    encode,
)
from spoiler_common.dead_letters import DeadLetterReason, build_dead_letter
from spoiler_common.exceptions import ConfigError, ContractError, SpoilerStreamError
from spoiler_common.topics import topic_name, topic_specs

__all__ = [
    "ConfigError",
    "ContractError",
    "DeadLetter",
    "DeadLetterReason",
    "LabelArrived",
    "ReviewPublished",
    "SpoilerPredicted",
    "SpoilerStreamError",
    "build_dead_letter",
    "decode",
    "decode_record",
    "encode",
    "topic_name",
    "topic_specs",
]
