"""Accepted fuzz messages are COPied into real PostgreSQL and read back unchanged.

Binary COPY does not range-check (an int4 column stores 2**40 as 0), so storing
is not enough: every stored value must come back equal to what the contract accepted.
"""

from __future__ import annotations

import random
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sink.batch import prepare
from sink.db import Writer
from sink.migrate import migrate
from sink.tables import TABLES
from tests.fuzz_support import ROLES, mutant
from tests.unit.sink.test_sink_batch import Msg

pytestmark = pytest.mark.integration

TOPIC = {"reviews": "r", "predictions": "p", "labels": "l", "dead_letters": "d"}


def test_accepted_fuzz_rows_round_trip_through_copy(sink_kit: Any) -> None:
    rng = random.Random(5)
    messages = []
    for i in range(2000):
        role = ROLES[i % 4]
        key, value = mutant(rng, role, f"f{i}", i)
        messages.append(Msg(TOPIC[role], 0, i, value, key))
    batch = prepare(messages, {v: k for k, v in TOPIC.items()})  # type: ignore[misc]
    accepted = {name: len(part.rows) for name, part in batch.tables.items()}
    assert all(accepted.values()), accepted  # the mutants leave some of each table valid
    conninfo = sink_kit.pg.conninfo()
    migrate(conninfo)
    writer = Writer(conninfo)
    try:
        result = writer.write(batch)
    finally:
        writer.close()
    assert result.refused == []
    with psycopg.connect(conninfo) as conn:
        for table in TABLES:
            cols = sql.SQL(", ").join(map(sql.Identifier, table.columns))
            keys = sql.SQL(", ").join(map(sql.Identifier, table.key))
            stored = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                cols, sql.Identifier(table.name), keys)).fetchall()
            positions = [table.columns.index(c) for c in table.key]

            def by_key(row: Any, at: list[int] = positions) -> tuple[Any, ...]:
                return tuple(row[i] for i in at)

            expected = sorted(batch.tables[table.name].rows, key=by_key)
            assert [tuple(r) for r in stored] == [tuple(r) for r in expected], table.name
    print(f"\nCOPY round trip of accepted fuzz rows: {accepted}")
