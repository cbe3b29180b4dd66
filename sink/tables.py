"""Which columns the sink writes, and the row tuple for each contract.

Column lists are code constants: the only SQL the sink builds from them is
identifiers (via psycopg.sql); message data only ever travels as COPY rows or
bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spoiler_common.contracts import DeadLetter, LabelArrived, ReviewPublished, SpoilerPredicted


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    # Columns that a newer message for the same key replaces (everything but the key).
    update: tuple[str, ...]
    # PostgreSQL types of `columns`, for binary COPY.
    types: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.types) != len(self.columns):
            raise ValueError(f"{self.name}: one type per column")


REVIEWS = Table(
    "reviews",
    (
        "review_id", "movie_id", "user_id", "review_date", "rating", "review_summary",
        "review_text", "text_words", "produced_at",
    ),
    ("review_id",),
    (
        "movie_id", "user_id", "review_date", "rating", "review_summary", "review_text",
        "text_words", "produced_at",
    ),
    ("text", "text", "text", "text", "int2", "text", "text", "int4", "timestamptz"),
)
PREDICTIONS = Table(
    "predictions",
    (
        "review_id", "model_version", "model_name", "spoiler_probability", "is_spoiler",
        "threshold", "produced_at", "predicted_at", "inference_ms", "queue_ms",
        "end_to_end_ms", "input_tokens", "unknown_tokens", "role",
    ),
    ("review_id", "model_version"),
    (
        "model_name", "spoiler_probability", "is_spoiler", "threshold", "produced_at",
        "predicted_at", "inference_ms", "queue_ms", "end_to_end_ms", "input_tokens",
        "unknown_tokens", "role",
    ),
    (
        "text", "text", "text", "float8", "bool", "float8", "timestamptz", "timestamptz",
        "float8", "float8", "float8", "int4", "int4", "text",
    ),
)
LABELS = Table(
    "labels",
    ("review_id", "is_spoiler", "labelled_at", "source"),
    ("review_id",),
    ("is_spoiler", "labelled_at", "source"),
    ("text", "bool", "timestamptz", "text"),
)
# Dead letters are insert-only: the first copy of a dead letter wins.
DEAD_LETTERS = Table(
    "dead_letters",
    (
        "dlq_partition", "dlq_offset", "service", "reason", "error", "source_topic",
        "source_partition", "source_offset", "key", "key_encoding", "value", "value_encoding",
        "failed_at",
    ),
    ("dlq_partition", "dlq_offset"),
    (),
    (
        "int4", "int8", "text", "text", "text", "text", "int4", "int8", "text", "text", "text",
        "text", "timestamptz",
    ),
)
TABLES: tuple[Table, ...] = (REVIEWS, PREDICTIONS, LABELS, DEAD_LETTERS)

Row = tuple[Any, ...]


def review_row(m: ReviewPublished) -> Row:
    return (
        m.review_id, m.movie_id, m.user_id, m.review_date, m.rating, m.review_summary,
        m.review_text, len(m.review_text.split()), m.produced_at,
    )


def prediction_row(m: SpoilerPredicted) -> Row:
    return (
        m.review_id, m.model_version, m.model_name, m.spoiler_probability, m.is_spoiler,
        m.threshold, m.produced_at, m.predicted_at, m.inference_ms, m.queue_ms,
        m.end_to_end_ms, m.input_tokens, m.unknown_tokens, m.role,
    )


def label_row(m: LabelArrived) -> Row:
    return (m.review_id, m.is_spoiler, m.labelled_at, m.source)


def dead_letter_row(m: DeadLetter, dlq_partition: int, dlq_offset: int) -> Row:
    return (
        dlq_partition, dlq_offset, m.service, m.reason, m.error, m.source_topic, m.partition,
        m.offset, m.key, m.key_encoding, m.value, m.value_encoding, m.failed_at,
    )


def key_indexes(table: Table) -> tuple[int, ...]:
    """Positions of the key columns in a row of `table`."""
    return tuple(table.columns.index(c) for c in table.key)


__all__ = [
    "DEAD_LETTERS",
    "LABELS",
    "PREDICTIONS",
    "REVIEWS",
    "TABLES",
    "Row",
    "Table",
    "dead_letter_row",
    "key_indexes",
    "label_row",
    "prediction_row",
    "review_row",
]
