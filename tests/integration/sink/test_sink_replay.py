"""Replays: duplicates on the topics and a second pass over the same topics add nothing."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_sink_replay_twice_no_duplicates(sink_kit: Any) -> None:
    n = 300
    messages = sink_kit.full_set(n)
    # A second prediction from another model version is a distinct key.
    messages += [sink_kit.prediction(f"r{i}", i, version="v2") for i in range(0, n, 3)]
    sink_kit.publish(messages)
    sink_kit.publish(messages)  # the producer retried everything: every message twice
    expected = {"reviews": n, "predictions": n + len(range(0, n, 3)), "labels": n}
    with sink_kit.running():
        sink_kit.wait_counts(expected)
    first = {t: sink_kit.rows(t, exclude=()) for t in ("reviews", "predictions", "labels")}
    assert sink_kit.counts() == {**expected, "dead_letters": 0}

    # Replay the whole topics from the start with a fresh group: identical rows, and
    # identical replays do not even touch stored_at.
    sink_kit.group_id += "-replay"
    with sink_kit.running():
        sink_kit.wait_for(lambda: sink_kit.committed().get(sink_kit.topic("labels"), 0) == 2 * n,
                          60, "replay group to commit every label")
    assert sink_kit.counts() == {**expected, "dead_letters": 0}
    for table, rows in first.items():
        assert sink_kit.rows(table, exclude=()) == rows, table
    outcomes = sink_kit.query("SELECT count(*), count(DISTINCT review_id), "
                              "count(*) FILTER (WHERE model_version = 'v1') "
                              "FROM review_outcomes")
    # predicted_at is equal for v1 and v2; the view breaks the tie by version (v2 > v1).
    assert outcomes == [(n, n, n - len(range(0, n, 3)))]


def test_sink_newer_message_for_same_key_wins(sink_kit: Any) -> None:
    sink_kit.publish([sink_kit.label("x1", is_spoiler=False),
                      sink_kit.review("x1", 1, rating=3)])
    sink_kit.publish([sink_kit.label("x1", is_spoiler=True, source="correction"),
                      sink_kit.review("x1", 1, rating=9)])
    with sink_kit.running():
        sink_kit.wait_for(
            lambda: sink_kit.committed().get(sink_kit.topic("labels"), 0) == 2, 60,
            "both labels committed")
    assert sink_kit.query("SELECT is_spoiler, source FROM labels") == [(True, "correction")]
    assert sink_kit.query("SELECT rating FROM reviews") == [(9,)]
