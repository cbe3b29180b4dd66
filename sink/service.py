"""One sink process: consume → validate → write → commit, on two threads.

Delivery: at least once from Kafka, idempotent upserts in PostgreSQL, offsets
committed only after the batch's transaction has committed. A crash anywhere
replays at most the uncommitted batches, which rewrite identical rows.

The parts, each in its own module:
- :mod:`sink.consume`: the consume thread (this one) polls and validates the next
  batch while
- :mod:`sink.writer_thread` stores the previous one (PostgreSQL works on another
  core meanwhile), retrying with the backoff of :mod:`sink.retry`;
- :mod:`sink.handover`: the only state the two threads share (one batch waits at
  most, so batches are stored and committed in order);
- :mod:`sink.offsets` and :mod:`sink.rebalance`: which offsets are committed, and
  what a revoke or a loss of partitions does to pending batches;
- :mod:`sink.lag`: the consumer-lag gauge.

Failure policy:
- bad message (contract): dead-lettered with its reason, offset committed;
- a message that makes the code raise: dead-lettered as ``internal_error``;
- rows PostgreSQL refuses (their content): the table is bisected to find them,
  they are dead-lettered as ``db_rejected`` and the rest is written;
- PostgreSQL unreachable or failing: the writer keeps the batch and retries
  with exponential backoff; the consume thread pauses the partitions and keeps
  polling (so the group membership survives); `/healthz` says unhealthy;
  nothing is committed;
- rebalance: pending batches are written and committed within
  ``revoke_flush_timeout_s``, or abandoned uncommitted for the next owner;
- SIGTERM/SIGINT: pending batches are written (within ``shutdown_timeout_s``);
- the writer thread dying (a bug): `run` raises SinkError after stopping.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from confluent_kafka import Consumer, Producer

from sink import metrics
from sink.consume import ConsumeLoop
from sink.db import Writer
from sink.handover import Handover
from sink.lag import LagGauge
from sink.migrate import migrate
from sink.offsets import on_commit
from sink.publisher import DeadLetterPublisher
from sink.rebalance import Rebalancer
from sink.retry import Backoff
from sink.settings import SinkSettings
from sink.writer_thread import WriterThread
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
        self._writer = writer
        self._roles = roles
        self._health = health
        self._migrate_conninfo = migrate_conninfo
        self._backoff = Backoff.of(settings)
        self._stop = threading.Event()
        self._handover = Handover()
        dlq_topic = next(t for t, r in roles.items() if r == "dead_letters")
        self._dead_letters = DeadLetterPublisher(producer, dlq_topic)
        self._loop = ConsumeLoop(consumer, self._handover, roles, settings, health,
                                 stopping=self._stop.is_set)
        self._rebalancer = Rebalancer(self._loop, self._handover,
                                      settings.revoke_flush_timeout_s)
        self._writer_thread = WriterThread(self._handover, writer, self._dead_letters,
                                           self._backoff, health,
                                           settings.dead_letter_max_value_bytes)
        self._lag = LagGauge(consumer, roles, settings.lag_interval_s)

    def stop(self) -> None:
        """Ask the loop to finish pending batches and exit (safe from a signal handler)."""
        self._stop.set()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Consume until stop() (or until `until()` is true), then flush and leave the group.

        Raises SinkError when the writer thread died or Kafka reported a fatal error.
        """
        if self._migrate_conninfo and not self._prepare_database():
            return
        self._writer_thread.start()
        r = self._rebalancer
        self._consumer.subscribe(list(self._roles), on_assign=r.on_assign,
                                 on_revoke=r.on_revoke, on_lost=r.on_lost)
        log.info("Sink consuming topics=%s group=%s", ",".join(self._roles),
                 self.settings.group_id)
        try:
            while not self._stop.is_set() and not (until and until()):
                self._health.beat()
                self._handover.raise_if_failed()
                self._loop.step()
                self._lag.maybe_update()
        finally:
            self._shutdown()
        # A writer that died while stopping is an error too, not a clean stop.
        self._handover.raise_if_failed()

    def _shutdown(self) -> None:
        self._handover.begin_deadline(self.settings.shutdown_timeout_s)
        if self._loop.buffered and not self._handover.failed:
            log.info("Stopping: writing the last batch messages=%d", self._loop.buffered)
            self._loop.submit_buffer()
        if not self._handover.wait_idle(self._handover.time_left()):
            log.error("Stopping with unstored batches; they stay uncommitted and will be re-read")
        self._loop.commit_stored(wait=True)
        self._consumer.close()
        self._handover.close()
        self._writer_thread.join(10)
        self._dead_letters.close(10)
        self._writer.close()
        log.info("Sink stopped")

    def _prepare_database(self) -> bool:
        """Apply migrations, waiting (with logged retries) for PostgreSQL to come up.

        False when stopped before that succeeded.
        """
        conninfo = self._migrate_conninfo
        assert conninfo is not None

        def attempt() -> bool:
            if self._stop.is_set():
                return False
            report = migrate(conninfo)
            log.info("Schema ready applied=%s", report.applied or "none")
            self._health.set_database(True, "ok")
            return True

        def on_retry(failures: int, exc: BaseException, delay: float) -> None:
            self._health.set_database(False, f"cannot migrate: {exc}".strip())
            log.warning("PostgreSQL not reachable, retrying in %.1fs attempt=%d: %s",
                        delay, failures, str(exc).strip())

        return self._backoff.run(attempt, retry_on=psycopg.OperationalError,
                                 sleep=self._stop.wait, on_retry=on_retry)


def build_sink(
    settings: SinkSettings | None = None,
    kafka: KafkaSettings | None = None,
    postgres: PostgresSettings | None = None,
    health: metrics.Health | None = None,
) -> Sink:
    """The bootstrap: settings (from the environment unless given) → a wired sink.

    Kafka clients and the database writer are built here, once; nothing connects
    before `Sink.run`. Raises ConfigError when PostgreSQL has no password set.
    """
    settings = settings or SinkSettings()
    kafka = kafka or KafkaSettings()
    postgres = postgres or PostgresSettings()
    roles: dict[str, TopicRole] = {topic_name(role, kafka.topic_prefix): role for role in ROLES}
    overrides: dict[str, Any] = {
        "session.timeout.ms": settings.session_timeout_ms,
        "on_commit": on_commit,
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


__all__ = ["GIL_SWITCH_INTERVAL_S", "Sink", "build_sink"]
