"""Turn a batch of Kafka messages into rows per table, dead letters and offsets.

Pure logic (no I/O), so the unit tests cover every rule:
- each message is validated with the shared contract; a bad one becomes a dead
  letter (service ``sink``) and its offset still counts as handled;
- rows are de-duplicated by table key inside the batch, the later offset
  winning (a replay of older messages followed by newer ones ends the same way
  as the original run), and sorted by key so concurrent writers lock rows in
  the same order;
- a dead letter that cannot be read is stored as-is for inspection, never
  re-published (that would loop on the dead-letter topic).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sink.tables import (
    DEAD_LETTERS,
    LABELS,
    PREDICTIONS,
    REVIEWS,
    Row,
    Table,
    dead_letter_row,
    key_indexes,
    label_row,
    prediction_row,
    review_row,
)
from spoiler_common.contracts import (
    DeadLetter,
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    dead_letter_for,
    decode,
)
from spoiler_common.exceptions import ContractError
from spoiler_common.topics import TopicRole

SERVICE = "sink"
UNREADABLE_DEAD_LETTER = "unreadable_dead_letter"


class Message(Protocol):
    """The part of confluent_kafka.Message the sink uses."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Rejected:
    """A message the sink refuses: published to the dead-letter topic."""

    dead_letter: DeadLetter
    key: bytes | None


@dataclass
class TableRows:
    table: Table
    rows: list[Row] = field(default_factory=list)
    # The message each row came from, to dead-letter it if the database refuses the row.
    sources: list[Message] = field(default_factory=list)


@dataclass
class PreparedBatch:
    tables: dict[str, TableRows]
    rejected: list[Rejected]
    # (topic, partition) -> next offset to commit (last handled + 1).
    offsets: dict[tuple[str, int], int]
    messages: int
    per_topic: dict[str, int] = field(default_factory=dict)
    # The consumer's assignment generation it was read in (see Sink._on_revoke).
    generation: int = 0

    @property
    def row_count(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())


_ROLE_TABLE: dict[str, tuple[Table, type[Any], Callable[[Any], Row], tuple[int, ...]]] = {
    "reviews": (REVIEWS, ReviewPublished, review_row, key_indexes(REVIEWS)),
    "predictions": (PREDICTIONS, SpoilerPredicted, prediction_row, key_indexes(PREDICTIONS)),
    "labels": (LABELS, LabelArrived, label_row, key_indexes(LABELS)),
}


def truncate_dead_letter(letter: DeadLetter, max_bytes: int) -> DeadLetter:
    """Cap the copied original value so the dead letter fits on its topic.

    The original stays in its own topic at (source_topic, partition, offset).
    """
    size = len(letter.value.encode("utf-8"))
    if size <= max_bytes:
        return letter
    kept = letter.value.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    if letter.value_encoding == "base64":
        kept = kept[: len(kept) - len(kept) % 4]
    return letter.model_copy(
        update={
            "value": kept,
            "error": f"{letter.error} (value truncated from {size} to {len(kept)} "
            f"{'characters' if letter.value_encoding == 'base64' else 'bytes'})",
        }
    )


def _text_or_base64(raw: bytes) -> tuple[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        return base64.b64encode(raw).decode("ascii"), "base64"
    return text, "utf-8"


def _unreadable_row(msg: Message, error: ContractError) -> Row:
    value, encoding = _text_or_base64(msg.value() or b"")
    key = msg.key()
    key_text = None if key is None else _text_or_base64(key)[0]
    return (
        msg.partition(), msg.offset(), "unknown", UNREADABLE_DEAD_LETTER, str(error),
        None, None, None, key_text, value, encoding, None,
    )


def prepare(
    messages: Iterable[Message],
    roles: dict[str, TopicRole],
    max_dead_letter_bytes: int = 262_144,
) -> PreparedBatch:
    """Validate, convert and de-duplicate one batch (see the module docstring)."""
    tables = {t.name: TableRows(t) for t in (REVIEWS, PREDICTIONS, LABELS, DEAD_LETTERS)}
    keyed: dict[str, dict[Any, tuple[Row, Message]]] = {t: {} for t in tables}
    rejected: list[Rejected] = []
    offsets: dict[tuple[str, int], int] = {}
    count = 0
    per_topic: dict[str, int] = {}
    for msg in messages:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        assert topic is not None and partition is not None and offset is not None
        count += 1
        per_topic[topic] = per_topic.get(topic, 0) + 1
        # A partition's messages arrive in offset order: the last one is the highest.
        offsets[(topic, partition)] = offset + 1
        role = roles[topic]
        raw = msg.value()
        if role == "dead_letters":
            try:
                letter = decode(raw, DeadLetter)
                row = dead_letter_row(letter, partition, offset)
            except ContractError as exc:
                row = _unreadable_row(msg, exc)
            keyed["dead_letters"][(partition, offset)] = (row, msg)
            continue
        table, model, to_row, idx = _ROLE_TABLE[role]
        try:
            row = to_row(decode(raw, model))
        except ContractError as exc:
            rejected.append(reject(msg, exc, max_dead_letter_bytes))
            continue
        row_key = row[idx[0]] if len(idx) == 1 else tuple(row[i] for i in idx)
        keyed[table.name][row_key] = (row, msg)
    for name, by_key in keyed.items():
        for key in sorted(by_key):
            row, source = by_key[key]
            tables[name].rows.append(row)
            tables[name].sources.append(source)
    return PreparedBatch(tables, rejected, offsets, count, per_topic)


def reject(
    msg: Message,
    error: ContractError | str,
    max_dead_letter_bytes: int,
    reason: str | None = None,
) -> Rejected:
    """The dead letter (service ``sink``) for a message the sink refuses."""
    letter = dead_letter_for(
        msg.value(),
        error,
        service=SERVICE,
        reason=reason,
        raw_key=msg.key(),
        source_topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
    )
    return Rejected(truncate_dead_letter(letter, max_dead_letter_bytes), msg.key())


__all__ = [
    "SERVICE",
    "UNREADABLE_DEAD_LETTER",
    "Message",
    "PreparedBatch",
    "Rejected",
    "TableRows",
    "prepare",
    "reject",
    "truncate_dead_letter",
]
