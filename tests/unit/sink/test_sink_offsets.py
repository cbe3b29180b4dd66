"""Commit and rebalance bookkeeping, the hand-over and the writer's backoff (stand-ins, no I/O).

What is committed: only the offsets of stored batches, highest per partition, once;
never those of a batch read before its partitions were revoked or lost; and what a
revoke, a loss, the shutdown deadline and a dying writer do to pending work.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from sink.batch import PreparedBatch
from sink.consume import ConsumeLoop
from sink.db import WriteResult
from sink.exceptions import DatabaseUnavailable, SinkError
from sink.handover import Handover
from sink.metrics import CONSUMER_LAG, Health
from sink.offsets import OffsetLedger
from sink.publisher import DeadLetterPublisher
from sink.rebalance import Rebalancer
from sink.retry import Backoff
from sink.service import Sink
from sink.settings import SinkSettings
from sink.writer_thread import WriterThread
from tests.unit.sink.test_sink_batch import Msg as BatchMsg
from tests.unit.sink.test_sink_batch import review

pytestmark = pytest.mark.unit

ROLES: dict[str, Any] = {"r": "reviews", "d": "dead_letters"}
WAIT_S = 10.0  # generous bound for a thread to get somewhere; never a timing assertion


def batch(offsets: dict[tuple[str, int], int]) -> PreparedBatch:
    return PreparedBatch(tables={}, rejected=[], offsets=offsets, messages=len(offsets))


class Msg(BatchMsg):
    """A consumed message as the consume loop sees it: a valid review."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        super().__init__(topic, partition, offset, review(f"r{partition}-{offset}"))

    def error(self) -> None:
        return None


@dataclass
class FakeConsumer:
    """The part of confluent_kafka.Consumer the sink calls, recording commits."""

    queue: list[Msg] = field(default_factory=list)
    commits: list[tuple[dict[tuple[str, int], int], bool]] = field(default_factory=list)
    committed_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    watermarks: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    closed: bool = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        out, self.queue = self.queue[:num_messages], self.queue[num_messages:]
        if not out:
            time.sleep(min(timeout, 0.01))
        return out

    def poll(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.01))

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append(({(tp.topic, tp.partition): tp.offset for tp in offsets},
                             asynchronous))

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in self.watermarks]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition,
                               self.committed_offsets.get((tp.topic, tp.partition), -1001))
                for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return self.watermarks[(tp.topic, tp.partition)]

    def pause(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    def produce(self, *args: Any, **kwargs: Any) -> None: ...

    def flush(self, timeout: float) -> int:
        return 0


class Store:
    """The database writer: records stored batches; can block on a gate, or fail."""

    def __init__(self, error: Callable[[], BaseException] | None = None,
                 gate_open: bool = True) -> None:
        self.error = error
        self.gate = threading.Event()
        if gate_open:
            self.gate.set()
        self.entered = threading.Event()
        self.calls = 0
        self.stored: list[PreparedBatch] = []

    def write(self, b: PreparedBatch) -> WriteResult:
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        if self.error is not None:
            raise self.error()
        self.stored.append(b)
        return WriteResult(rows={"reviews": b.row_count})

    def close(self) -> None: ...


def settings(**overrides: Any) -> SinkSettings:
    base: dict[str, Any] = {"batch_size": 100, "batch_max_wait_s": 60, "retry_initial_s": 0.01,
                            "retry_max_s": 0.01, "migrate_on_start": False, "metrics_port": 0}
    return SinkSettings(**{**base, **overrides})


class Kit:
    """A consume loop, rebalance callbacks and a writer thread around stand-ins."""

    def __init__(self, store: Store, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic, **overrides: Any) -> None:
        self.settings = settings(**overrides)
        self.consumer = FakeConsumer()
        self.health = Health()
        self.handover = Handover(clock)
        self.store = store
        self.loop = ConsumeLoop(self.consumer,  # type: ignore[arg-type]
                                self.handover, ROLES, self.settings, self.health,
                                stopping=lambda: False)
        self.rebalancer = Rebalancer(self.loop, self.handover,
                                     self.settings.revoke_flush_timeout_s)
        self.writer = WriterThread(
            self.handover, store, DeadLetterPublisher(FakeProducer(), "d"),  # type: ignore[arg-type]
            backoff or Backoff.of(self.settings), self.health, 10_000)
        self.writer.start()

    def read(self, *msgs: Msg) -> None:
        self.consumer.queue.extend(msgs)
        self.loop.step()

    def revoke(self) -> None:
        self.rebalancer.on_revoke(self.consumer, [TopicPartition("r", 0)])  # type: ignore[arg-type]

    def lose(self) -> None:
        self.rebalancer.on_lost(self.consumer, [TopicPartition("r", 0)])  # type: ignore[arg-type]

    def close(self) -> None:
        self.handover.close()
        self.store.gate.set()
        self.writer.join(WAIT_S)


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, "the writer thread did not get there"
        time.sleep(0.005)


# ---- the ledger ------------------------------------------------------------------------


def test_only_stored_batches_are_committable_highest_offset_per_partition_once() -> None:
    ledger = OffsetLedger()
    a, b = batch({("r", 0): 5}), batch({("r", 0): 9, ("r", 1): 3})
    ledger.stamp(a)
    ledger.stamp(b)
    assert ledger.take() == {}, "read but not stored: nothing to commit"
    assert ledger.record(a)
    assert ledger.take() == {("r", 0): 5}
    assert ledger.take() == {}, "offsets are handed out once"
    assert ledger.record(b) and ledger.record(a)
    assert ledger.take() == {("r", 0): 9, ("r", 1): 3}, "an offset never moves back"


def test_a_batch_of_an_older_generation_is_never_committable() -> None:
    ledger = OffsetLedger()
    stored, in_flight = batch({("r", 0): 5}), batch({("r", 0): 9})
    ledger.stamp(stored)
    ledger.stamp(in_flight)
    ledger.record(stored)
    ledger.new_generation()  # partitions revoked or lost
    assert ledger.take() == {}, "stored before, not committed by then: forgotten"
    assert not ledger.record(in_flight) and ledger.take() == {}
    fresh = batch({("r", 0): 12})
    ledger.stamp(fresh)
    assert ledger.record(fresh) and ledger.take() == {("r", 0): 12}


# ---- the hand-over ---------------------------------------------------------------------


def test_one_batch_waits_at_most_and_batches_come_out_in_order() -> None:
    handover = Handover()
    a, b = batch({("r", 0): 1}), batch({("r", 0): 2})
    assert handover.offer(a, 0)
    assert not handover.offer(b, 0), "a second batch waits for the first to be taken"
    assert handover.next_batch() is a
    assert handover.offer(b, 0) and handover.next_batch() is b
    assert handover.active == 2 and not handover.wait_idle(0)
    handover.finished()
    handover.finished()
    assert handover.wait_idle(0)
    handover.close()
    assert handover.next_batch() is None


def test_the_shutdown_deadline_is_set_once_and_then_abandons_what_the_writer_holds() -> None:
    now = [100.0]
    handover = Handover(clock=lambda: now[0])
    held = handover.stamp(batch({("r", 0): 1}))
    assert handover.time_left() == 0 and not handover.abandoned(held)
    handover.begin_deadline(30)
    assert handover.time_left() == 30 and not handover.abandoned(held)
    now[0] += 31
    assert handover.abandoned(held) and handover.time_left() == 0
    handover.begin_deadline(300)  # a second SIGTERM does not buy more time
    assert handover.time_left() == 0


# ---- commits, revokes and losses -------------------------------------------------------


def test_offsets_are_committed_only_after_the_writer_stored_the_batch() -> None:
    kit = Kit(Store(gate_open=False), batch_size=3)
    try:
        kit.read(Msg("r", 0, 0), Msg("r", 0, 1), Msg("r", 1, 7))  # a full batch: handed over
        wait_until(kit.store.entered.is_set)
        kit.loop.step()
        assert kit.consumer.commits == [], "nothing is committed while the write runs"
        kit.store.gate.set()
        assert kit.handover.wait_idle(WAIT_S)
        kit.loop.step()
        assert kit.consumer.commits == [({("r", 0): 2, ("r", 1): 8}, True)]
    finally:
        kit.close()


def test_a_revoke_stores_and_commits_what_was_read_before_the_partitions_move() -> None:
    kit = Kit(Store())
    try:
        kit.read(Msg("r", 0, 0), Msg("r", 0, 1), Msg("r", 0, 2))  # buffered, not yet due
        assert kit.loop.buffered == 3 and kit.consumer.commits == []
        kit.revoke()
        assert kit.loop.buffered == 0
        assert [b.messages for b in kit.store.stored] == [3]
        assert kit.consumer.commits == [({("r", 0): 3}, False)], "committed, synchronously"
    finally:
        kit.close()


def test_a_batch_still_being_written_at_a_revoke_never_commits_afterwards() -> None:
    kit = Kit(Store(gate_open=False), batch_size=2, revoke_flush_timeout_s=0.05)
    try:
        kit.read(Msg("r", 0, 0), Msg("r", 0, 1))
        wait_until(kit.store.entered.is_set)
        kit.revoke()  # the write does not finish within the revoke timeout
        kit.store.gate.set()
        assert kit.handover.wait_idle(WAIT_S)
        assert len(kit.store.stored) == 1, "the rows are stored (harmless: upserts)"
        kit.loop.commit_stored(wait=True)
        assert kit.consumer.commits == [], "but the next owner's offsets are not overwritten"
    finally:
        kit.close()


def test_lost_partitions_drop_pending_work_and_commit_nothing() -> None:
    kit = Kit(Store(gate_open=False), batch_size=2)
    try:
        kit.read(Msg("r", 0, 0), Msg("r", 0, 1))  # handed over
        kit.read(Msg("r", 0, 2))  # one more message buffered
        kit.store.gate.set()
        assert kit.handover.wait_idle(WAIT_S) and len(kit.store.stored) == 1
        kit.lose()  # the first batch is stored but not committed yet
        assert kit.loop.buffered == 0
        kit.loop.commit_stored(wait=True)
        assert kit.consumer.commits == []
        assert len(kit.store.stored) == 1, "the dropped message was never handed over"
    finally:
        kit.close()


def test_a_revoke_cuts_the_writers_backoff_short_and_it_abandons_the_batch() -> None:
    kit = Kit(Store(error=lambda: DatabaseUnavailable("connection refused")),
              backoff=Backoff(60, 60), batch_size=1)
    try:
        kit.read(Msg("r", 0, 0))
        wait_until(lambda: kit.handover.retrying)  # failed once, now waiting 60 s
        assert kit.health.report()[1]["failing_batch"] == {"attempts": 1, "offsets": "r/0@<1"}
        kit.handover.new_generation()  # what a revoke or a loss does
        assert kit.handover.wait_idle(WAIT_S), "the 60 s wait was cut short"
        assert kit.store.calls == 1, "and the abandoned batch was not tried again"
        assert not kit.handover.retrying
    finally:
        kit.close()


def test_the_shutdown_deadline_cuts_the_writers_backoff_short() -> None:
    ticks = itertools.count()  # every reading of the clock is one second later
    kit = Kit(Store(error=lambda: DatabaseUnavailable("connection refused")),
              backoff=Backoff(60, 60), clock=lambda: float(next(ticks)), batch_size=1)
    try:
        kit.read(Msg("r", 0, 0))
        wait_until(lambda: kit.handover.retrying)
        kit.handover.begin_deadline(0)
        assert kit.handover.wait_idle(WAIT_S) and kit.store.calls == 1
    finally:
        kit.close()


def test_a_writer_that_dies_while_stopping_makes_run_raise_not_stop_cleanly() -> None:
    class Died(BaseException):
        pass

    store = Store(error=lambda: Died("out of luck"), gate_open=False)
    consumer = FakeConsumer(queue=[Msg("r", 0, 0), Msg("r", 0, 1)])
    sink = Sink(settings(batch_size=2), consumer, FakeProducer(), store,  # type: ignore[arg-type]
                ROLES, Health())
    failure: list[BaseException] = []

    def run() -> None:
        try:
            sink.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(store.entered.is_set)
    sink.stop()  # SIGTERM while the write is in progress, which then dies
    store.gate.set()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], SinkError), failure
    assert "writer thread failed" in str(failure[0]) and consumer.closed
    assert consumer.commits == []


def test_the_backoff_doubles_up_to_the_cap_and_other_errors_are_not_retried() -> None:
    waits: list[float] = []
    failures = iter(range(5))

    def attempt() -> str:
        if next(failures, None) is not None:
            raise DatabaseUnavailable("down")
        return "stored"

    backoff = Backoff.of(SinkSettings(retry_initial_s=0.5, retry_max_s=3))
    seen: list[int] = []
    assert backoff.run(attempt, retry_on=DatabaseUnavailable, sleep=waits.append,
                       on_retry=lambda n, exc, delay: seen.append(n)) == "stored"
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0] and seen == [1, 2, 3, 4, 5]

    def bug() -> None:
        raise KeyError("not a database problem")

    with pytest.raises(KeyError):
        backoff.run(bug, retry_on=DatabaseUnavailable, sleep=waits.append,
                    on_retry=lambda *_: None)


def test_the_lag_gauge_counts_uncommitted_messages_per_topic() -> None:
    from sink.lag import LagGauge

    consumer = FakeConsumer(
        committed_offsets={("r", 0): 40},
        # partition 1 never committed, retention removed its first 100 messages
        watermarks={("r", 0): (0, 50), ("r", 1): (100, 130)},
    )
    LagGauge(consumer, ["r", "d"], interval_s=5).maybe_update()  # type: ignore[arg-type]
    assert CONSUMER_LAG.labels("r")._value.get() == 10 + 30
    assert CONSUMER_LAG.labels("d")._value.get() == 0, "no partition of it: 0"
