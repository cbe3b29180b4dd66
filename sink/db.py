"""The database side: COPY into a temporary staging table, then one upsert per table.

Every table of a batch is written in one transaction, so the Kafka offsets
committed afterwards always describe rows that are durably stored. Message
data only travels as COPY rows or bound parameters; the SQL text is composed
from the constant column lists in :mod:`sink.tables`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from sink.batch import Message, PreparedBatch
from sink.exceptions import DatabaseUnavailable
from sink.tables import TABLES, Row, Table

log = logging.getLogger(__name__)

# Errors caused by one row's content: the batch is retried row by row and the
# offending rows are dead-lettered. Everything else is the database's fault
# (down, restarting, out of disk, schema missing) and is retried as a whole.
ROW_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.DataError,
    psycopg.IntegrityError,
    UnicodeEncodeError,
)


def _stage(table: Table) -> sql.Identifier:
    return sql.Identifier(f"stage_{table.name}")


def _cols(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def _conflict(table: Table) -> sql.Composable:
    if not table.update:
        # Insert-only; no target, so either unique constraint of dead_letters counts.
        return sql.SQL("ON CONFLICT DO NOTHING")
    target, excluded = sql.Identifier(table.name), sql.Identifier("excluded")
    sets = sql.SQL(", ").join(
        sql.SQL("{c} = {e}.{c}").format(c=sql.Identifier(c), e=excluded) for c in table.update
    )
    mine = sql.SQL(", ").join(sql.SQL("{t}.{c}").format(t=target, c=sql.Identifier(c))
                              for c in table.update)
    theirs = sql.SQL(", ").join(sql.SQL("{e}.{c}").format(e=excluded, c=sql.Identifier(c))
                                for c in table.update)
    # Skip identical replays: no dead tuple, and stored_at keeps the first write.
    return sql.SQL(
        "ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE ({mine}) IS DISTINCT FROM ({theirs})"
    ).format(key=_cols(table.key), sets=sets, mine=mine, theirs=theirs)


@dataclass(frozen=True)
class Statements:
    create_stage: sql.Composed
    copy: sql.Composed
    upsert: sql.Composed
    insert_one: sql.Composed
    copy_direct: sql.Composed


def statements(table: Table) -> Statements:
    cols = _cols(table.columns)
    return Statements(
        create_stage=sql.SQL(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            "SELECT {cols} FROM {table} WITH NO DATA"
        ).format(stage=_stage(table), cols=cols, table=sql.Identifier(table.name)),
        copy=sql.SQL("COPY {stage} ({cols}) FROM STDIN (FORMAT BINARY)").format(
            stage=_stage(table), cols=cols),
        upsert=sql.SQL("INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} {conflict}").format(
            table=sql.Identifier(table.name), cols=cols, stage=_stage(table),
            conflict=_conflict(table),
        ),
        copy_direct=sql.SQL("COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)").format(
            table=sql.Identifier(table.name), cols=cols),
        insert_one=sql.SQL("INSERT INTO {table} ({cols}) VALUES ({params}) {conflict}").format(
            table=sql.Identifier(table.name), cols=cols,
            params=sql.SQL(", ").join(sql.Placeholder() * len(table.columns)),
            conflict=_conflict(table),
        ),
    )


STATEMENTS: dict[str, Statements] = {t.name: statements(t) for t in TABLES}


@dataclass
class WriteResult:
    rows: dict[str, int] = field(default_factory=dict)
    # Rows the database refused, with its reason; the caller dead-letters them.
    refused: list[tuple[str, Message, str]] = field(default_factory=list)


# After a key conflict on the direct path, a table uses the staged upsert for this
# many batches (a replay usually spans several), then tries the direct path again.
STAGED_AFTER_CONFLICT = 20


class Writer:
    """One connection, reopened after any failure; one transaction per batch.

    Fast path: rows whose keys are all new (the normal case) are COPied straight
    into their table inside a savepoint, which costs what a raw COPY costs. A key
    that exists already makes that COPY fail with a unique violation; the
    savepoint is rolled back and the batch takes the staged path instead: COPY
    into a temporary table, then ``INSERT … ON CONFLICT``. Both leave the same
    rows, so the choice is only about speed.
    """

    def __init__(self, conninfo: str, connect_timeout_s: int = 5) -> None:
        self._conninfo = conninfo
        self._connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection | None = None
        self._staged_batches: dict[str, int] = {}  # table -> batches left on the staged path

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = psycopg.connect(
                self._conninfo, connect_timeout=self._connect_timeout_s, autocommit=False
            )
            with conn.transaction():
                for name in STATEMENTS:
                    conn.execute(STATEMENTS[name].create_stage)
            self._conn = conn
            log.info("Connected to PostgreSQL")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write(self, batch: PreparedBatch) -> WriteResult:
        """Store the batch in one transaction; raise DatabaseUnavailable to be retried."""
        try:
            conn = self._connection()
            try:
                return self._write_copy(conn, batch)
            except ROW_ERRORS as exc:
                log.warning("Batch refused, writing it row by row to find the bad rows: %s", exc)
                if conn.broken:
                    raise
                return self._write_rows(conn, batch)
        except psycopg.Error as exc:
            self.close()
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}".strip()) from exc

    def _copy_direct(self, conn: psycopg.Connection, cur: psycopg.Cursor, name: str,
                     rows: list[Row], types: tuple[str, ...]) -> bool:
        """COPY straight into the table; False (and nothing written) if a key exists."""
        left = self._staged_batches.get(name, 0)
        if left:
            self._staged_batches[name] = left - 1
            return False
        try:
            # A savepoint: a conflict undoes only this COPY.
            with conn.transaction(), cur.copy(STATEMENTS[name].copy_direct) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            self._staged_batches[name] = STAGED_AFTER_CONFLICT
            log.debug("Known keys in table=%s; upserting the next %d batches", name,
                      STAGED_AFTER_CONFLICT)
            return False
        return True

    def _write_copy(self, conn: psycopg.Connection, batch: PreparedBatch) -> WriteResult:
        result = WriteResult()
        with conn.transaction(), conn.cursor() as cur:
            for name, part in batch.tables.items():
                if not part.rows:
                    continue
                if part.table.update and self._copy_direct(
                        conn, cur, name, part.rows, part.table.types):
                    result.rows[name] = len(part.rows)
                    continue
                stmts = STATEMENTS[name]
                with cur.copy(stmts.copy) as copy:
                    copy.set_types(part.table.types)
                    for row in part.rows:
                        copy.write_row(row)
                cur.execute(stmts.upsert)
                result.rows[name] = max(cur.rowcount, 0)
        return result

    def _write_rows(self, conn: psycopg.Connection, batch: PreparedBatch) -> WriteResult:
        result = WriteResult()
        with conn.transaction(), conn.cursor() as cur:
            for name, part in batch.tables.items():
                stmts = STATEMENTS[name]
                written = 0
                for row, source in zip(part.rows, part.sources, strict=True):
                    try:
                        with conn.transaction():  # a savepoint per row
                            cur.execute(stmts.insert_one, row)
                            written += max(cur.rowcount, 0)
                    except ROW_ERRORS as exc:
                        if conn.broken:
                            raise
                        result.refused.append((name, source, str(exc).strip()))
                if part.rows:
                    result.rows[name] = written
        return result


__all__ = ["ROW_ERRORS", "STATEMENTS", "WriteResult", "Writer", "statements"]
