"""Rows PostgreSQL refuses are bisected out of their batch; the rest is stored (real database)."""

from __future__ import annotations

from typing import Any

import pytest

from sink.batch import prepare
from sink.db import Writer
from sink.migrate import migrate
from tests.unit.sink.test_sink_batch import ROLES, Msg, label, review

pytestmark = pytest.mark.integration


def test_refused_rows_are_found_by_bisection_and_the_rest_is_stored(sink_kit: Any) -> None:
    conninfo = sink_kit.pg.conninfo()
    migrate(conninfo)
    messages = [Msg("r", 0, i, review(f"r{i}")) for i in range(40)]
    messages += [Msg("l", 0, i, label(f"r{i}")) for i in range(10)]
    batch = prepare([*messages, Msg("d", 0, 0, b"not a dead letter", b"k")], ROLES)
    reviews = batch.tables["reviews"]
    # Rows that slipped past the contract (the contract refuses all three kinds itself):
    # NUL in text (SQLSTATE 22021), a CHECK violation (23514), text psycopg cannot encode.
    bad = {3: (6, "a\x00b"), 17: (4, 11), 31: (6, "\ud800")}
    for i, (column, value) in bad.items():
        row = list(reviews.rows[i])
        row[column] = value
        reviews.rows[i] = tuple(row)
    dead = batch.tables["dead_letters"]
    row = list(dead.rows[0])
    row[4] = "error with NUL \x00"  # a dead-letter row PostgreSQL refuses: kept as unreadable
    dead.rows[0] = tuple(row)

    writer = Writer(conninfo)
    try:
        result = writer.write(batch)
    finally:
        writer.close()
    refused = sorted((table, msg.offset()) for table, msg, _ in result.refused)
    assert refused == [("reviews", reviews.sources[i].offset()) for i in sorted(bad)]
    assert result.rows == {"reviews": 37, "labels": 10, "dead_letters": 1}
    stored = {r for (r,) in sink_kit.query("SELECT review_id FROM reviews")}
    assert stored == {f"r{i}" for i in range(40)} - {
        reviews.rows[i][0] for i in bad}
    assert sink_kit.query("SELECT reason, service FROM dead_letters") == [
        ("unreadable_dead_letter", "unknown")]
