"""The consume → validate → write → commit loop.

Delivery: at least once from Kafka, idempotent upserts in PostgreSQL, offsets
committed only after the batch's transaction has committed. A crash anywhere
replays at most the uncommitted batches, which rewrite identical rows.

Two threads: the main one consumes and validates the next batch while a writer
thread stores the previous one (PostgreSQL works on another core meanwhile).
The writer takes batches strictly in order, one waiting at most, so offsets
are committed in order and only for stored rows.

Failure policy:
- bad message (contract): dead-lettered with its reason, offset committed;
- a message that makes the code raise: dead-lettered as ``internal_error``;
- rows PostgreSQL refuses (their content): the table is bisected to find them,
  they are dead-lettered as ``db_rejected`` and the rest is written;
- PostgreSQL unreachable or failing: the writer keeps the batch and retries
  with exponential backoff; the main thread pauses the partitions and keeps
  polling (so the group membership survives); `/healthz` says unhealthy;
  nothing is committed;
- rebalance: pending batches are written and committed within
  ``revoke_flush_timeout_s``, or abandoned uncommitted for the next owner;
- SIGTERM/SIGINT: pending batches are written (within ``shutdown_timeout_s``).
"""

from __future__ import annotations

import collections
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
from spoiler_common.contracts import headers_for
from spoiler_common.dead_letters import DeadLetterReason
from spoiler_common.kafka import consumer as build_consumer
from spoiler_common.kafka import producer as build_producer
from spoiler_common.settings import KafkaSettings, PostgresSettings
from spoiler_common.topics import ROLES, TopicRole, topic_name

log = logging.getLogger(__name__)

# The writer thread mostly waits on PostgreSQL and then needs the GIL back for a
# moment to feed COPY; with CPython's default 5 ms switch interval it queues behind
# the consumer thread's decoding. 1 ms measured 25-40% more writes per second here.
GIL_SWITCH_INTERVAL_S = 0.001


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
        self._pending: PreparedBatch | None = None  # prepared, not yet taken by the writer
        self._next_lag = 0.0
        # Shared with the writer thread.
        self._cond = threading.Condition()
        self._queue: collections.deque[PreparedBatch] = collections.deque()
        self._active = 0  # batches handed over and not finished
        self._closing = False
        self._generation = 0  # bumped when partitions are revoked or lost
        self._deadline: float | None = None  # set at shutdown: give up after it
        self._wake = threading.Event()  # cuts a retry backoff short
        self._retrying = threading.Event()
        self._writer_error: BaseException | None = None
        # Offsets of stored batches, committed by the main thread: librdkafka's
        # synchronous commit can block while another thread sits in consume().
        self._stored_offsets: dict[tuple[str, int], int] = {}

    # ---- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish pending batches and exit (safe from a signal handler)."""
        self._stop.set()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Consume until stop() (or until `until()` is true), then flush and leave the group."""
        if self._migrate_conninfo and not self._prepare_database():
            return
        writer = threading.Thread(target=self._writer_loop, name="sink-writer", daemon=True)
        writer.start()
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
                self._raise_if_writer_failed()
                self._commit_stored()
                self._poll_once()
                if self._buffer and self._batch_due():
                    self._submit_buffer()
                self._maybe_update_lag()
        finally:
            self._shutdown(writer)

    def _shutdown(self, writer: threading.Thread) -> None:
        self._begin_deadline()
        if self._buffer and self._writer_error is None:
            log.info("Stopping: writing the last batch messages=%d", len(self._buffer))
            self._submit_buffer()
        if not self._wait_idle(self._time_left()):
            log.error("Stopping with unstored batches; they stay uncommitted and will be re-read")
        self._commit_stored(wait=True)
        self._consumer.close()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        writer.join(10)
        self._producer.flush(10)
        self._writer.close()
        log.info("Sink stopped")

    def _begin_deadline(self) -> None:
        if self._deadline is None:
            self._deadline = time.monotonic() + self.settings.shutdown_timeout_s
            self._wake.set()

    def _time_left(self) -> float:
        return 0.0 if self._deadline is None else max(0.0, self._deadline - time.monotonic())

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

    # ---- consuming (main thread) -----------------------------------------------------------

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

    def _prepare_buffer(self) -> PreparedBatch:
        batch = prepare(self._buffer, self._roles, self.settings.dead_letter_max_value_bytes)
        batch.generation = self._generation
        self._buffer = []
        return batch

    def _submit_buffer(self) -> None:
        """Hand the buffer to the writer; while it is stuck retrying, keep the group alive."""
        batch = self._pending = self._prepare_buffer()
        paused: list[TopicPartition] = []
        try:
            while not self._offer(batch, timeout=0.2):
                self._raise_if_writer_failed()
                self._commit_stored()
                self._health.beat()
                if self._stop.is_set():
                    self._begin_deadline()
                if self._pending is not batch:
                    return  # revoked or lost meanwhile; the callback dealt with it
                if self._retrying.is_set() and not paused:
                    paused = self._consumer.assignment()
                    self._consumer.pause(paused)
                if paused:
                    # Serves rebalances and the poll-interval deadline; partitions are
                    # paused, so at most a message fetched before the pause comes back.
                    msg = self._consumer.poll(0.2)
                    if msg is not None:
                        self._accept(msg)
        finally:
            if self._pending is batch:
                self._pending = None
            if paused:
                try:
                    self._consumer.resume(paused)
                except KafkaException as exc:  # partitions already gone
                    log.debug("Resume after retry: %s", exc)

    # ---- hand-over -------------------------------------------------------------------------

    def _offer(self, batch: PreparedBatch, timeout: float) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._queue or self._closing, timeout):
                return False
            self._queue.append(batch)
            self._active += 1
            self._cond.notify_all()
            return True

    def _wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)

    def _raise_if_writer_failed(self) -> None:
        if self._writer_error is not None:
            raise SinkError(f"the writer thread failed: {self._writer_error}") \
                from self._writer_error

    # ---- writing (writer thread) -----------------------------------------------------------

    def _writer_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closing)
                if not self._queue:
                    return
                batch = self._queue.popleft()
                self._cond.notify_all()
            try:
                self._write_with_retry(batch)
            except BaseException as exc:
                log.exception("Writer thread failed")
                self._writer_error = exc
                self._stop.set()
                with self._cond:
                    self._queue.clear()
                    self._active = 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _abandoned(self, batch: PreparedBatch) -> bool:
        """Revoked since it was read, or past the shutdown deadline: leave it uncommitted."""
        return batch.generation != self._generation or (
            self._deadline is not None and time.monotonic() > self._deadline
        )

    def _write_with_retry(self, batch: PreparedBatch) -> None:
        """Store the batch, retrying with backoff for as long as it takes.

        Never gives up on a batch it owns (giving up would lose it, dying would
        crash-loop on it): the failure count and the batch's offsets are in
        `spoiler_sink_batch_failures` and `/healthz` instead.
        """
        attempt = 0
        try:
            while True:
                if self._abandoned(batch):
                    log.warning("Batch abandoned uncommitted (revoked or shutting down); the "
                                "next owner re-reads it messages=%d", batch.messages)
                    return
                try:
                    self._store(batch)
                    if attempt:
                        log.info("Write succeeded after retries attempts=%d", attempt + 1)
                    self._health.set_database(True, "ok")
                    self._health.set_failures(0, "")
                    return
                except Exception as exc:
                    attempt += 1
                    metrics.RETRIES.inc()
                    known = isinstance(exc, DatabaseUnavailable | DeadLetterUnavailable)
                    detail = str(exc) if known else f"{type(exc).__name__}: {exc}"
                    self._health.set_database(False, detail)
                    self._health.set_failures(attempt, batch.first_offsets())
                    self._retrying.set()
                    delay = self._backoff(attempt)
                    log.warning("Write failed, retrying in %.1fs attempt=%d messages=%d "
                                "batch=%s: %s", delay, attempt, batch.messages,
                                batch.first_offsets(), detail, exc_info=not known)
                    self._wake.wait(delay)
                    self._wake.clear()
        finally:
            self._retrying.clear()

    def _store(self, batch: PreparedBatch) -> None:
        started = time.perf_counter()
        # Dead letters first: once published they must not be published again on retry.
        if batch.rejected:
            self._publish(batch.rejected)
            batch.rejected = []
        result = self._writer.write(batch)
        refused = [
            reject(msg, f"PostgreSQL refused the row of table {table}: {error}",
                   self.settings.dead_letter_max_value_bytes,
                   reason=DeadLetterReason.DB_REJECTED)
            for table, msg, error in result.refused
        ]
        if refused:
            self._publish(refused)
        elapsed = time.perf_counter() - started
        with self._cond:
            if batch.generation == self._generation:
                for tp, offset in batch.offsets.items():
                    self._stored_offsets[tp] = max(offset, self._stored_offsets.get(tp, 0))
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
                    self._dlq_topic, item.encoded, key=item.key,
                    headers=list(headers_for(letter, "sink")), on_delivery=delivered,
                )
            except Exception as exc:
                raise DeadLetterUnavailable(f"cannot queue dead letter: {exc}") from exc
            if letter.reason != DeadLetterReason.INTERNAL_ERROR:  # logged with its traceback
                log.warning("Dead-lettered message reason=%s topic=%s partition=%s offset=%s: "
                            "%s", letter.reason, letter.source_topic, letter.partition,
                            letter.offset, letter.error[:200])
        remaining = self._producer.flush(30)
        if remaining or failures:
            raise DeadLetterUnavailable(
                f"dead-letter topic {self._dlq_topic} did not take {remaining + len(failures)} "
                f"message(s): {'; '.join(failures[:3]) or 'timeout'}"
            )
        for item in rejected:
            metrics.DEAD_LETTERS.labels(item.dead_letter.reason).inc()

    def _commit_stored(self, wait: bool = False) -> None:
        """Commit the offsets of every batch stored so far (main thread only).

        In the loop the commit is asynchronous (librdkafka keeps commits in order);
        before partitions are revoked and at shutdown it waits for the broker.
        """
        with self._cond:
            offsets, self._stored_offsets = self._stored_offsets, {}
        if not offsets:
            return
        try:
            partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            if wait:
                self._consumer.commit(offsets=partitions, asynchronous=False)
            else:
                self._consumer.commit(offsets=partitions, asynchronous=True)
        except KafkaException as exc:
            # The rows are stored; a replay of these messages rewrites identical rows.
            log.warning("Offset commit failed (messages will be replayed, harmlessly): %s", exc)

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return float(min(s.retry_max_s, s.retry_initial_s * 2 ** (attempt - 1)))

    # ---- rebalancing (main thread, inside poll) --------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Partitions assigned count=%d", len(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Store and commit what was read, in order, before the partitions move on."""
        if self._writer_error is not None:  # nothing can be stored; leave it uncommitted
            self._on_lost(_consumer, partitions)
            return
        batches = [self._pending] if self._pending is not None else []
        if self._buffer:
            batches.append(self._prepare_buffer())
        self._pending = None
        log.info("Partitions revoked count=%d pending_batches=%d", len(partitions),
                 len(batches) + self._active)
        end = time.monotonic() + self.settings.revoke_flush_timeout_s
        stored = all(self._offer(b, max(0.0, end - time.monotonic())) for b in batches) \
            and self._wait_idle(max(0.0, end - time.monotonic()))
        if not stored:
            log.warning("Could not store pending batches within %.0fs of the rebalance; they "
                        "stay uncommitted for the next owner",
                        self.settings.revoke_flush_timeout_s)
        self._commit_stored(wait=True)
        self._new_generation()

    def _new_generation(self) -> None:
        """Whatever was read before now is no longer ours to write or commit."""
        with self._cond:
            self._generation += 1
            self._stored_offsets = {}
        self._wake.set()

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Someone else owns them already: committing now would fail or overwrite theirs.
        log.warning("Partitions lost count=%d; dropping %d uncommitted messages",
                    len(partitions), len(self._buffer))
        self._buffer = []
        self._pending = None
        self._new_generation()

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


def _commit_result(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
    if err is not None:
        # The rows are stored; a replay of these messages rewrites identical rows.
        log.warning("Offset commit failed (messages will be replayed, harmlessly): %s", err)


def build_sink(
    settings: SinkSettings,
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    health: metrics.Health | None = None,
) -> Sink:
    """Wire settings, Kafka clients and the database writer once (tests call this too)."""
    roles: dict[str, TopicRole] = {topic_name(role, kafka.topic_prefix): role for role in ROLES}
    overrides: dict[str, Any] = {
        "session.timeout.ms": settings.session_timeout_ms,
        "on_commit": _commit_result,
    }
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
