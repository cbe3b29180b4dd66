"""Re-publish chosen dead letters to the topic they came from, after the cause is fixed.

Rows are chosen from the `dead_letters` table (by id, service, reason, source topic,
failure time). A source message rejected by several services (a bad review is
dead-lettered by the worker and by the sink) is re-published once. The original
bytes come from the stored value, or, when that copy was truncated, from the
source topic at the recorded offset (if retention still holds it). Replayed rows
get `replayed_at`, and are skipped by later replays unless asked.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Message, TopicPartition
from psycopg import sql

from spoiler_common.kafka import consumer, producer
from spoiler_common.settings import KafkaSettings

log = logging.getLogger(__name__)

REPLAY_HEADER = "replayed-from-dead-letter"


@dataclass(frozen=True)
class Selection:
    """Which dead letters to replay; empty fields do not filter."""

    ids: Sequence[int] = ()
    services: Sequence[str] = ()
    reasons: Sequence[str] = ()
    source_topics: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    include_replayed: bool = False
    limit: int | None = None

    def where(self) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = [sql.SQL("source_topic IS NOT NULL")]
        params: list[Any] = []
        for column, values in (("id", self.ids), ("service", self.services),
                               ("reason", self.reasons), ("source_topic", self.source_topics)):
            if values:
                clauses.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
                params.append(list(values))
        if self.since is not None:
            clauses.append(sql.SQL("failed_at >= %s"))
            params.append(self.since)
        if self.until is not None:
            clauses.append(sql.SQL("failed_at < %s"))
            params.append(self.until)
        if not self.include_replayed:
            clauses.append(sql.SQL("replayed_at IS NULL"))
        return sql.SQL(" AND ").join(clauses), params


@dataclass
class Candidate:
    ids: list[int]
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone
    reasons: set[str] = field(default_factory=set)
    # The stored copy was truncated: read the original from the source topic.
    from_source: bool = False


@dataclass
class ReplayReport:
    selected_rows: int = 0
    messages: int = 0
    published: int = 0
    from_source_topic: int = 0
    unavailable: list[str] = field(default_factory=list)  # why a message could not be had
    failed: list[str] = field(default_factory=list)


def select(conninfo: str, selection: Selection) -> list[Candidate]:
    """The chosen rows, one candidate per source message (oldest first)."""
    where, params = selection.where()
    query = sql.SQL(
        "SELECT id, source_topic, source_partition, source_offset, key, key_encoding, value, "
        "value_encoding, error, reason FROM dead_letters WHERE {} ORDER BY id"
    ).format(where)
    if selection.limit is not None:
        query = sql.SQL("{} LIMIT {}").format(query, sql.Literal(selection.limit))
    by_source: dict[tuple[str, int, int], Candidate] = {}
    with psycopg.connect(conninfo) as conn:
        for (row_id, topic, part, off, key, key_enc, value, value_enc, error,
             reason) in conn.execute(query, params):
            coords = (topic, part, off)
            if coords in by_source:
                by_source[coords].ids.append(row_id)
                by_source[coords].reasons.add(reason)
                continue
            tombstone = reason == "empty_message"
            by_source[coords] = Candidate(
                [row_id], topic, part, off, _bytes(key, key_enc),
                None if tombstone else _bytes(value, value_enc), {reason},
                from_source="[value truncated from" in error)
    return list(by_source.values())


def _bytes(text: str | None, encoding: str) -> bytes | None:
    if text is None:
        return None
    return base64.b64decode(text) if encoding == "base64" else text.encode("utf-8")


def _from_source(kafka: KafkaSettings, candidate: Candidate) -> Message | None:
    c = consumer(kafka, "spoiler-dead-letter-replay", "spoiler-dead-letter-replay")
    try:
        c.assign([TopicPartition(candidate.topic, candidate.partition, candidate.offset)])
        msg = c.poll(10)
        if msg is None or msg.error() is not None or msg.offset() != candidate.offset:
            return None
        return msg
    finally:
        c.close()


def replay(conninfo: str, kafka: KafkaSettings, selection: Selection, *,
           dry_run: bool = False) -> ReplayReport:
    """Re-publish the selected dead letters' original messages; mark the rows replayed."""
    candidates = select(conninfo, selection)
    report = ReplayReport(sum(len(c.ids) for c in candidates), len(candidates))
    ready: list[Candidate] = []
    for cand in candidates:
        if cand.from_source:
            msg = _from_source(kafka, cand)
            if msg is None:
                report.unavailable.append(
                    f"{cand.topic}/{cand.partition}@{cand.offset}: stored copy truncated and "
                    "the source topic no longer has it")
                continue
            cand.key, cand.value = msg.key(), msg.value()
            report.from_source_topic += 1
        ready.append(cand)
    if dry_run or not ready:
        return report
    prod = producer(kafka, "spoiler-dead-letter-replay", **{"message.max.bytes": 2_000_000})
    done: list[Candidate] = []

    def delivered(cand: Candidate) -> Any:
        def callback(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                done.append(cand)
            else:
                report.failed.append(f"{cand.topic}/{cand.partition}@{cand.offset}: {err.str()}")
        return callback

    for cand in ready:
        prod.produce(cand.topic, cand.value, key=cand.key,
                     headers=[(REPLAY_HEADER, ",".join(map(str, cand.ids)).encode())],
                     on_delivery=delivered(cand))
        prod.poll(0)
    left = prod.flush(60)
    if left:
        report.failed.append(f"{left} message(s) not confirmed within 60 s")
    report.published = len(done)
    if done:
        with psycopg.connect(conninfo) as conn:
            conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = ANY(%s)",
                         ([i for cand in done for i in cand.ids],))
    log.info("Replayed dead letters published=%d failed=%d", report.published,
             len(report.failed))
    return report


__all__ = ["REPLAY_HEADER", "ReplayReport", "Selection", "replay", "select"]
