"""Crashes and restarts of `python -m sink run`: exact counts, nothing lost, nothing doubled."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.integration

N = 6000  # reviews; x3 messages


def _expected(n: int) -> dict[str, int]:
    return {"reviews": n, "predictions": n, "labels": n}


def test_sink_kill9_mid_batch_then_restart(sink_kit: Any) -> None:
    sink_kit.publish(sink_kit.full_set(N))
    # Static membership: the restarted process takes the partitions back at once.
    first = sink_kit.start_sink(instance_id="sink-a", batch_size=200)
    at_kill = sink_kit.wait_for(
        lambda: (c := sink_kit.counts())["reviews"] > 0 and c, 60, "first rows stored",
        every_s=0.05)
    first.kill9()
    total = sum(at_kill[t] for t in ("reviews", "predictions", "labels"))
    assert total < 3 * N, "sink finished before it was killed; the test proves nothing"

    sink_kit.start_sink(instance_id="sink-a", batch_size=200)
    sink_kit.wait_counts(_expected(N), timeout_s=120)
    assert sink_kit.counts() == {**_expected(N), "dead_letters": 0}
    sink_kit.wait_for(lambda: set(sink_kit.committed().values()) == {N}, 60,
                      "every offset committed")


def test_sink_sigterm_flushes_and_commits_what_it_wrote(sink_kit: Any) -> None:
    sink_kit.publish(sink_kit.full_set(N))
    sink = sink_kit.start_sink(batch_size=200)
    sink_kit.wait_for(lambda: sink_kit.counts()["reviews"] > 0, 60, "first rows", every_s=0.05)
    assert sink.terminate() == 0, sink.log()
    assert "Sink stopped" in sink.log()
    stored = sink_kit.counts()
    committed = sink_kit.committed()
    # Graceful: every committed message is stored, and every stored row is committed.
    for role in ("reviews", "predictions", "labels"):
        assert committed.get(sink_kit.topic(role), 0) == stored[role], (role, stored, committed)

    sink_kit.start_sink()
    sink_kit.wait_counts(_expected(N))
    assert sink_kit.counts() == {**_expected(N), "dead_letters": 0}


def test_sink_two_processes_share_the_work(sink_kit: Any) -> None:
    sink_kit.publish(sink_kit.full_set(N))
    a = sink_kit.start_sink(batch_size=200)
    sink_kit.wait_for(lambda: sink_kit.counts()["reviews"] > 0, 60, "first rows", every_s=0.05)
    b = sink_kit.start_sink(batch_size=200)  # joins mid-stream: a rebalance
    # Publish the rest once the group has settled, so that both processes get some.
    sink_kit.wait_for(lambda: "Partitions assigned" in b.log()
                      and a.log().count("Partitions assigned") >= 2, 60, "the rebalance")
    more = sink_kit.full_set(N, prefix="s")
    sink_kit.publish(more)
    sink_kit.wait_counts(_expected(2 * N), timeout_s=120)
    time.sleep(1)  # a straggling duplicate write would show now
    assert sink_kit.counts() == {**_expected(2 * N), "dead_letters": 0}
    written = [p.metric("spoiler_sink_rows_written_total") for p in (a, b)]
    assert all(w > 0 for w in written), f"one process did no work: {written}"
    assert a.terminate() == 0 and b.terminate() == 0


def test_sink_survives_postgres_restart(sink_kit: Any, private_postgres: Any) -> None:
    sink_kit.pg = private_postgres.settings
    sink_kit.publish(sink_kit.full_set(N))
    sink = sink_kit.start_sink(batch_size=200)
    sink_kit.wait_for(lambda: sink_kit.counts()["reviews"] > 0, 60, "first rows", every_s=0.05)
    private_postgres.stop("immediate")  # a crash, mid-stream
    sink_kit.publish(sink_kit.full_set(N, prefix="late"))  # arrives while it is down
    sink_kit.wait_for(lambda: sink.healthz()[0] == 503, 30, "/healthz to report unhealthy")
    sink_kit.wait_for(lambda: sink.metric("spoiler_sink_retries_total") >= 2, 30, "retries")
    assert sink.metric("spoiler_sink_healthy") == 0
    assert sink.alive()
    private_postgres.start()
    sink_kit.wait_counts(_expected(2 * N), timeout_s=120)
    sink_kit.wait_for(lambda: sink.healthz()[0] == 200, 30, "/healthz to recover")
    assert sink_kit.counts() == {**_expected(2 * N), "dead_letters": 0}
    assert sink.terminate() == 0


def test_sink_rebalance_while_postgres_is_down(sink_kit: Any, private_postgres: Any) -> None:
    """A revoke that cannot store its batch gives it up uncommitted; the new owners store it."""
    sink_kit.pg = private_postgres.settings
    sink_kit.publish(sink_kit.full_set(N))
    a = sink_kit.start_sink(batch_size=200, revoke_flush_timeout_s=2)
    sink_kit.wait_for(lambda: sink_kit.counts()["reviews"] > 0, 60, "first rows", every_s=0.05)
    private_postgres.stop("immediate")
    sink_kit.publish(sink_kit.full_set(N, prefix="late"))
    sink_kit.wait_for(lambda: a.healthz()[0] == 503, 30, "first sink unhealthy")
    # Joins at once (no migration step that would wait for the database): a rebalance.
    b = sink_kit.start_sink(batch_size=200, revoke_flush_timeout_s=2, migrate_on_start=False)
    sink_kit.wait_for(lambda: "Partitions revoked" in a.log(), 60, "the rebalance")
    sink_kit.wait_for(lambda: b.metric("spoiler_sink_retries_total") >= 1, 60,
                      "second sink to try writing")
    assert "stay uncommitted" in a.log() or "abandoned uncommitted" in a.log()
    private_postgres.start()
    sink_kit.wait_counts(_expected(2 * N), timeout_s=120)
    assert sink_kit.counts() == {**_expected(2 * N), "dead_letters": 0}
    sink_kit.wait_for(lambda: set(sink_kit.committed().values()) == {2 * N}, 60,
                      "every offset committed")
    assert a.terminate() == 0 and b.terminate() == 0
