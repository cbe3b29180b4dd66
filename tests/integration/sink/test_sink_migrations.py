"""Migrations: from empty, re-applied as a no-op, concurrent starts, edited files refused."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from sink.exceptions import MigrationError
from sink.migrate import Migration, load_migrations, migrate
from spoiler_common.settings import PostgresSettings

pytestmark = pytest.mark.integration


def _objects(pg: PostgresSettings) -> set[str]:
    with psycopg.connect(pg.conninfo()) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_sink_migrate_from_empty_then_noop(pg_settings: PostgresSettings) -> None:
    first = migrate(pg_settings.conninfo())
    assert first.applied == [m.version for m in load_migrations()]
    assert {"reviews", "predictions", "labels", "dead_letters", "review_outcomes",
            "schema_migrations"} <= _objects(pg_settings)
    again = migrate(pg_settings.conninfo())
    assert again.applied == []
    assert again.already == first.applied
    with psycopg.connect(pg_settings.conninfo()) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            len(first.applied),)


def test_sink_migrate_concurrent_starts(pg_settings: PostgresSettings) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(5)

    def one() -> None:
        try:
            barrier.wait()
            results.append(migrate(pg_settings.conninfo()).applied)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    # Exactly one process applied each migration; the others found nothing to do.
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, len(load_migrations())]


def test_sink_migrate_refuses_edited_migration(
    pg_settings: PostgresSettings, tmp_path: Path
) -> None:
    original = [Migration(1, "first", "CREATE TABLE t_one (id int)")]
    migrate(pg_settings.conninfo(), original)
    edited = [Migration(1, "first", "CREATE TABLE t_one (id bigint)")]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(pg_settings.conninfo(), edited)


def test_sink_failed_migration_leaves_nothing(pg_settings: PostgresSettings) -> None:
    broken = [Migration(1, "ok", "CREATE TABLE t_ok (id int)"),
              Migration(2, "bad", "CREATE TABLE t_bad (id int); SELECT 1/0")]
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(pg_settings.conninfo(), broken)
    assert "t_ok" in _objects(pg_settings)
    assert "t_bad" not in _objects(pg_settings)
    fixed = [broken[0], Migration(2, "bad", "CREATE TABLE t_bad (id int)")]
    assert migrate(pg_settings.conninfo(), fixed).applied == [2]
