"""Turn a batch of Kafka messages into rows per table, dead letters and offsets.

Pure logic (no I/O), so the unit tests cover every rule:
- each message is validated with the shared contract; a bad one becomes a dead
  letter (service ``sink``) and its offset still counts as handled;
- rows are de-duplicated by table key inside the batch, the later offset
  winning (a replay of older messages followed by newer ones ends the same way
  as the original run), and sorted by key so concurrent writers lock rows in
  the same order;
- a dead letter that cannot be read is stored as-is for inspection, never
  re-published (that would loop on the dead-letter topic);
- whatever a message makes this code raise (a bug) is caught per message: the
  message becomes a dead letter with reason ``internal_error``; one message can
  never fail its batch.
"""

from __future__ import annotations

import logging
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
    decode,
    decode_record,
)
from spoiler_common.dead_letters import (
    DeadLetterReason,
    as_text,
    build_dead_letter,
    explain,
    storable,
)
from spoiler_common.exceptions import ContractError
from spoiler_common.topics import TopicRole

log = logging.getLogger(__name__)

SERVICE = "sink"
UNREADABLE_DEAD_LETTER = DeadLetterReason.UNREADABLE_DEAD_LETTER.value


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
    encoded: bytes


@dataclass
class TableRows:
    table: Table
    rows: list[Row] = field(default_factory=list)
    # The message each row came from, to dead-letter it if the database refuses the row.
    sources: list[Message] = field(default_factory=list)
    # For a row the database refuses that cannot be dead-lettered (a dead letter
    # itself): a storable stand-in row, so nothing read is left out of the table.
    fallback: Callable[[Message, str], Row] | None = None


@dataclass
class PreparedBatch:
    tables: dict[str, TableRows]
    rejected: list[Rejected]
    # (topic, partition) -> next offset to commit (last handled + 1).
    offsets: dict[tuple[str, int], int]
    messages: int
    per_topic: dict[str, int] = field(default_factory=dict)
    # The consumer's assignment generation it was read in (see sink.offsets).
    generation: int = 0

    @property
    def row_count(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())

    def first_offsets(self) -> str:
        """Where the batch starts, for logs and /healthz: topic/partition@offset, ..."""
        return ", ".join(f"{t}/{p}@<{o}" for (t, p), o in sorted(self.offsets.items())[:6])


# Which model role each predictions topic carries: the product topic only the
# champion's, the shadow topic only challengers' (a mix-up would put a shadow verdict
# into review_outcomes, or hide a served one).
_TOPIC_MODEL_ROLE = {"predictions": "champion", "shadow_predictions": "challenger"}


def _prediction_row(topic_role: str) -> Callable[[SpoilerPredicted], Row]:
    expected = _TOPIC_MODEL_ROLE[topic_role]

    def to_row(m: SpoilerPredicted) -> Row:
        if m.role != expected:
            raise ContractError(
                "invalid_value",
                f"field 'role': a {m.role}'s prediction on the {topic_role} topic, which "
                f"carries {expected} predictions only; publish it to the other topic",
                field="role", expected=expected, got=m.role,
            )
        return prediction_row(m)

    return to_row


_ROLE_TABLE: dict[str, tuple[Table, type[Any], Callable[[Any], Row], tuple[int, ...]]] = {
    "reviews": (REVIEWS, ReviewPublished, review_row, key_indexes(REVIEWS)),
    "labels": (LABELS, LabelArrived, label_row, key_indexes(LABELS)),
    **{
        role: (PREDICTIONS, SpoilerPredicted, _prediction_row(role), key_indexes(PREDICTIONS))
        for role in _TOPIC_MODEL_ROLE
    },
}


def unreadable_row(msg: Message, error: ContractError | BaseException | str) -> Row:
    """A dead-letter-topic message that is not a dead letter, kept as-is (storable)."""
    _, detail = explain(error)
    value, encoding = as_text(msg.value() or b"")
    key = msg.key()
    key_text, key_encoding = (None, "utf-8") if key is None else as_text(key)
    return (
        msg.partition(), msg.offset(), "unknown", UNREADABLE_DEAD_LETTER,
        storable(detail, 4000), None, None, None, key_text, key_encoding, value, encoding, None,
    )


def prepare(
    messages: Iterable[Message],
    roles: dict[str, TopicRole],
    max_dead_letter_bytes: int = 262_144,
) -> PreparedBatch:
    """Validate, convert and de-duplicate one batch (see the module docstring)."""
    tables = {t.name: TableRows(t) for t in (REVIEWS, PREDICTIONS, LABELS, DEAD_LETTERS)}
    tables["dead_letters"].fallback = unreadable_row
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
        try:
            if role == "dead_letters":
                keyed["dead_letters"][(partition, offset)] = (_dead_letter_row(msg), msg)
                continue
            table, model, to_row, idx = _ROLE_TABLE[role]
            try:
                row = to_row(decode_record(msg.key(), msg.value(), model))
            except ContractError as exc:
                rejected.append(reject(msg, exc, max_dead_letter_bytes))
                continue
            row_key = row[idx[0]] if len(idx) == 1 else tuple(row[i] for i in idx)
            keyed[table.name][row_key] = (row, msg)
        except Exception as exc:  # the per-message boundary: a bug is this message's only
            log.exception("Message made the sink fail; dead-lettering it as internal_error "
                          "topic=%s partition=%s offset=%s", topic, partition, offset)
            if role == "dead_letters":
                keyed["dead_letters"][(partition, offset)] = (unreadable_row(msg, exc), msg)
            else:
                rejected.append(reject(msg, exc, max_dead_letter_bytes))
    for name, by_key in keyed.items():
        for key in sorted(by_key):
            row, source = by_key[key]
            tables[name].rows.append(row)
            tables[name].sources.append(source)
    return PreparedBatch(tables, rejected, offsets, count, per_topic)


def _dead_letter_row(msg: Message) -> Row:
    partition, offset = msg.partition(), msg.offset()
    assert partition is not None and offset is not None
    try:
        letter = decode(msg.value(), DeadLetter)
    except ContractError as exc:
        return unreadable_row(msg, exc)
    return dead_letter_row(letter, partition, offset)


def reject(
    msg: Message,
    error: BaseException | str,
    max_dead_letter_bytes: int,
    reason: str | None = None,
) -> Rejected:
    """The dead letter (service ``sink``) for a message the sink refuses."""
    letter, encoded = build_dead_letter(
        service=SERVICE,
        error=error,
        reason=reason,
        value=msg.value(),
        key=msg.key(),
        source_topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        max_value_bytes=max_dead_letter_bytes,
    )
    return Rejected(letter, msg.key(), encoded)


__all__ = [
    "SERVICE",
    "UNREADABLE_DEAD_LETTER",
    "Message",
    "PreparedBatch",
    "Rejected",
    "TableRows",
    "prepare",
    "reject",
    "unreadable_row",
]
