"""The consume → validate → write → commit loop.

Delivery: at least once from Kafka, idempotent upserts in PostgreSQL, offsets
committed only after the batch's transaction has committed. A crash anywhere
replays at most the uncommitted batch, which rewrites identical rows.

Failure policy:
- bad message (contract): dead-lettered with its reason, offset committed;
- a row PostgreSQL refuses (data error): dead-lettered as ``db_rejected``;
- PostgreSQL unreachable or failing: the batch is kept, partitions paused, the
  write retried with exponential backoff while the loop keeps polling (so the
  group membership survives), `/healthz` says unhealthy; nothing is committed;
- rebalance: the pending batch is written and committed within
  ``revoke_flush_timeout_s``, or dropped uncommitted for the next owner;
- SIGTERM/SIGINT: the pending batch is written (within ``shutdown_timeout_s``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from sink import metrics
from sink.batch import PreparedBatch, Rejected, prepare, reject
from sink.db import Writer
from sink.exceptions import DatabaseUnavailable, DeadLetterUnavailable, SinkError
from sink.migrate import migrate
from sink.settings import SinkSettings
from spoiler_common.contracts import encode, headers_for
from spoiler_common.kafka import consumer as build_consumer
from spoiler_common.kafka import producer as build_producer
from spoiler_common.settings import KafkaSettings, PostgresSettings
from spoiler_common.topics import ROLES, TopicRole, topic_name

log = logging.getLogger(__name__)


class Sink:
    """One sink process: a consumer-group member writing batches to PostgreSQL."""

    def __init__(
        self,
        settings: SinkSettings,
        consumer: Consumer,
        producer: Producer,
        writer: Writer,
        roles: dict[str, TopicRole],
        health: metrics.Health,
        migrate_conninfo: str | None = None,
    ) -> None:
        self.settings = settings
        self._consumer = consumer
        self._producer = producer
        self._writer = writer
        self._roles = roles
        self._dlq_topic = next(t for t, r in roles.items() if r == "dead_letters")
        self._health = health
        self._migrate_conninfo = migrate_conninfo
        self._stop = threading.Event()
        self._buffer: list[Message] = []
        self._buffer_started = 0.0
        self._generation = 0  # bumped when partitions are revoked
        self._next_lag = 0.0

    # ---- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the current batch and exit (signal-handler safe)."""
        self._stop.set()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Consume until stop() (or until `until()` is true), then flush and leave the group."""
        if self._migrate_conninfo and not self._prepare_database():
            return
        self._consumer.subscribe(
            list(self._roles),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info("Sink consuming topics=%s group=%s", ",".join(self._roles),
                 self.settings.group_id)
        try:
            while not self._stop.is_set() and not (until and until()):
                self._health.beat()
                self._poll_once()
                if self._buffer and self._batch_due():
                    self._flush(deadline=None)
                self._maybe_update_lag()
        finally:
            if self._buffer:
                log.info("Stopping: writing the last batch messages=%d", len(self._buffer))
                self._flush(deadline=time.monotonic() + self.settings.shutdown_timeout_s)
            self._consumer.close()
            self._producer.flush(10)
            self._writer.close()
            log.info("Sink stopped")

    def _prepare_database(self) -> bool:
        """Apply migrations, waiting (with logged retries) for PostgreSQL to come up."""
        assert self._migrate_conninfo is not None
        attempt = 0
        while not self._stop.is_set():
            try:
                report = migrate(self._migrate_conninfo)
                log.info("Schema ready applied=%s", report.applied or "none")
                self._health.set_database(True, "ok")
                return True
            except psycopg.OperationalError as exc:
                attempt += 1
                delay = self._backoff(attempt)
                self._health.set_database(False, f"cannot migrate: {exc}".strip())
                log.warning("PostgreSQL not reachable, retrying in %.1fs attempt=%d: %s",
                            delay, attempt, str(exc).strip())
                self._stop.wait(delay)
        return False

    # ---- consuming -------------------------------------------------------------------------

    def _poll_once(self) -> None:
        if self._buffer:
            timeout = max(0.0, self._buffer_started + self.settings.batch_max_wait_s
                          - time.monotonic())
        else:
            timeout = self.settings.batch_max_wait_s
        want = max(1, self.settings.batch_size - len(self._buffer))
        for msg in self._consumer.consume(num_messages=want, timeout=timeout):
            self._accept(msg)

    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise SinkError(f"fatal Kafka error, restart the sink: {err}")
            log.warning("Kafka consumer error code=%s: %s", err.name(), err.str())
            return
        if not self._buffer:
            self._buffer_started = time.monotonic()
        self._buffer.append(msg)

    def _batch_due(self) -> bool:
        return (
            len(self._buffer) >= self.settings.batch_size
            or time.monotonic() - self._buffer_started >= self.settings.batch_max_wait_s
        )

    # ---- writing ---------------------------------------------------------------------------

    def _flush(self, deadline: float | None, in_callback: bool = False) -> bool:
        """Write the buffer and commit its offsets; retry until done, revoked or `deadline`.

        Returns whether the batch was stored. In a rebalance callback (or at
        shutdown) there is a deadline and no polling: a batch not stored by then
        is dropped uncommitted, and whoever owns the partitions next re-reads it.
        """
        taken = len(self._buffer)
        batch = prepare(self._buffer, self._roles, self.settings.dead_letter_max_value_bytes)
        generation = self._generation
        attempt = 0
        paused: list[TopicPartition] = []
        try:
            while True:
                try:
                    self._store(batch)
                    # Messages polled while retrying stay for the next batch.
                    self._buffer = self._buffer[taken:]
                    self._buffer_started = time.monotonic()
                    if attempt:
                        log.info("Write succeeded after retries attempts=%d", attempt + 1)
                    self._health.set_database(True, "ok")
                    return True
                except (DatabaseUnavailable, DeadLetterUnavailable) as exc:
                    attempt += 1
                    metrics.RETRIES.inc()
                    self._health.set_database(False, str(exc))
                    delay = self._backoff(attempt)
                    if deadline is not None and time.monotonic() + delay > deadline:
                        log.error("Giving up on the batch; its %d messages stay uncommitted "
                                  "and will be re-read: %s", batch.messages, exc)
                        self._buffer = []
                        return False
                    log.warning("Write failed, retrying in %.1fs attempt=%d messages=%d: %s",
                                delay, attempt, batch.messages, exc)
                    if deadline is not None or in_callback:
                        time.sleep(delay)
                        continue
                    if not paused:
                        paused = self._consumer.assignment()
                        self._consumer.pause(paused)
                    self._wait_polling(delay)
                    if self._generation != generation:
                        return False  # revoked while waiting: the batch was written or dropped
        finally:
            if paused:
                try:
                    self._consumer.resume(paused)
                except KafkaException as exc:  # partitions already gone
                    log.debug("Resume after retry: %s", exc)

    def _wait_polling(self, delay: float) -> None:
        """Sleep `delay` while serving the group protocol (partitions are paused)."""
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0 and not self._stop.is_set():
            self._health.beat()
            msg = self._consumer.poll(min(left, 0.5))
            if msg is not None:  # fetched before the pause took effect; keep it in order
                self._accept(msg)

    def _store(self, batch: PreparedBatch) -> None:
        started = time.perf_counter()
        # Dead letters first: once published they must not be published again on retry.
        if batch.rejected:
            self._publish(batch.rejected)
            batch.rejected = []
        result = self._writer.write(batch)
        refused = []
        for table, source, error in result.refused:
            if table == "dead_letters":
                log.error("PostgreSQL refused a dead letter; skipped partition=%d offset=%d: %s",
                          source.partition, source.offset, error)
                metrics.DEAD_LETTERS.labels("db_rejected").inc()
                continue
            refused.append(reject(source, f"PostgreSQL refused the row: {error}",
                                  self.settings.dead_letter_max_value_bytes, reason="db_rejected"))
        if refused:
            self._publish(refused)
        elapsed = time.perf_counter() - started
        self._commit(batch.offsets)
        metrics.WRITE_SECONDS.observe(elapsed)
        metrics.BATCH_SIZE.observe(batch.messages)
        for table, rows in result.rows.items():
            metrics.ROWS_WRITTEN.labels(table).inc(rows)
        for topic, count in batch.per_topic.items():
            metrics.MESSAGES.labels(topic).inc(count)
        log.debug("Batch stored messages=%d rows=%s seconds=%.3f", batch.messages, result.rows,
                  elapsed)

    def _publish(self, rejected: list[Rejected]) -> None:
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err.str())

        for item in rejected:
            letter = item.dead_letter
            try:
                self._producer.produce(
                    self._dlq_topic, encode(letter), key=item.key,
                    headers=headers_for(letter, "sink"), on_delivery=delivered,
                )
            except (KafkaException, BufferError) as exc:
                raise DeadLetterUnavailable(f"cannot queue dead letter: {exc}") from exc
            log.warning("Dead-lettered message reason=%s topic=%s partition=%s offset=%s: %s",
                        letter.reason, letter.source_topic, letter.partition, letter.offset,
                        letter.error[:200])
        remaining = self._producer.flush(30)
        if remaining or failures:
            raise DeadLetterUnavailable(
                f"dead-letter topic {self._dlq_topic} did not take {remaining + len(failures)} "
                f"message(s): {'; '.join(failures[:3]) or 'timeout'}"
            )
        for item in rejected:
            metrics.DEAD_LETTERS.labels(item.dead_letter.reason).inc()

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if not offsets:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            # The rows are stored; a replay of these messages rewrites identical rows.
            log.warning("Offset commit failed (messages will be replayed, harmlessly): %s", exc)

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return float(min(s.retry_max_s, s.retry_initial_s * 2 ** (attempt - 1)))

    # ---- rebalancing -----------------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Partitions assigned count=%d", len(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Partitions revoked count=%d pending=%d", len(partitions), len(self._buffer))
        if self._buffer:
            self._flush(deadline=time.monotonic() + self.settings.revoke_flush_timeout_s,
                        in_callback=True)
        self._buffer = []
        self._generation += 1

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Someone else owns them already: committing now would fail or overwrite theirs.
        log.warning("Partitions lost count=%d; dropping %d uncommitted messages",
                    len(partitions), len(self._buffer))
        self._buffer = []
        self._generation += 1

    # ---- metrics ---------------------------------------------------------------------------

    def _maybe_update_lag(self) -> None:
        now = time.monotonic()
        if now < self._next_lag:
            return
        self._next_lag = now + self.settings.lag_interval_s
        lag: dict[str, int] = dict.fromkeys(self._roles, 0)
        try:
            assigned = self._consumer.assignment()
            committed = self._consumer.committed(assigned, timeout=5) if assigned else []
        except KafkaException as exc:
            log.debug("Lag not updated: %s", exc)
            return
        for tp in committed:
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                continue
            done = tp.offset if tp.offset >= 0 else 0
            lag[tp.topic] += max(0, high - done)
        for topic, value in lag.items():
            metrics.CONSUMER_LAG.labels(topic).set(value)


def build_sink(
    settings: SinkSettings,
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    health: metrics.Health | None = None,
) -> Sink:
    """Wire settings, Kafka clients and the database writer once (tests call this too)."""
    roles: dict[str, TopicRole] = {topic_name(role, kafka.topic_prefix): role for role in ROLES}
    overrides: dict[str, Any] = {"session.timeout.ms": settings.session_timeout_ms}
    if settings.instance_id:
        overrides["group.instance.id"] = settings.instance_id
    client_id = f"{settings.client_id}-{os.getpid()}"
    conninfo = postgres.conninfo()
    return Sink(
        settings,
        build_consumer(kafka, settings.group_id, client_id, **overrides),
        build_producer(kafka, f"{client_id}-dlq"),
        Writer(conninfo, settings.connect_timeout_s),
        roles,
        health or metrics.Health(stall_after_s=settings.stall_after_s),
        migrate_conninfo=conninfo if settings.migrate_on_start else None,
    )


__all__ = ["Sink", "build_sink"]
