"""The database side: COPY into a temporary staging table, then one upsert per table.

Every table of a batch is written in one transaction, so the Kafka offsets
committed afterwards always describe rows that are durably stored. Message
data only travels as COPY rows or bound parameters; the SQL text is composed
from the constant column lists in :mod:`sink.tables`.

A table whose rows PostgreSQL refuses for their content (see
:func:`row_fault`) is bisected, each half in its own savepoint, down to the
offending rows; those are returned as refused (the caller dead-letters them)
and the rest is written. Any other error is the database's (down, restarting,
out of disk, schema missing): the whole batch is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from sink.batch import Message, PreparedBatch, TableRows
from sink.exceptions import DatabaseUnavailable
from sink.tables import TABLES, Row, Table

log = logging.getLogger(__name__)

# SQLSTATE classes caused by a row's content: data exception (22), integrity
# constraint violation (23), program limit exceeded (54: e.g. an index row too big).
ROW_FAULT_CLASSES = frozenset({"22", "23", "54"})
# Raised by psycopg's dumpers before anything reaches the server (text that is not
# UTF-8 encodable, an integer too big for its binary format).
DUMP_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OverflowError)


def row_fault(exc: BaseException, conn: psycopg.Connection) -> bool:
    """Whether `exc` came from the rows written (bisect) rather than from the database."""
    if conn.broken:
        return False
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return True  # includes client-side refusals (NUL in a parameter) without a SQLSTATE
    if isinstance(exc, psycopg.Error):
        return (exc.sqlstate or "")[:2] in ROW_FAULT_CLASSES
    return isinstance(exc, DUMP_ERRORS)


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
    clear_stage: sql.Composed


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
        clear_stage=sql.SQL("DELETE FROM {stage}").format(stage=_stage(table)),
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
        """Store the batch in one transaction; raise DatabaseUnavailable to be retried.

        Rows refused for their content are bisected out and returned in `refused`.
        """
        try:
            conn = self._connection()
            result = WriteResult()
            with conn.transaction(), conn.cursor() as cur:
                for name, part in batch.tables.items():
                    if part.rows:
                        result.rows[name] = self._write_table(conn, cur, part, result)
            return result
        except Exception as exc:
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

    def _staged(self, cur: psycopg.Cursor, table: Table, rows: list[Row]) -> int:
        """COPY into the staging table, upsert from it, empty it; rows changed."""
        stmts = STATEMENTS[table.name]
        with cur.copy(stmts.copy) as copy:
            copy.set_types(table.types)
            for row in rows:
                copy.write_row(row)
        cur.execute(stmts.upsert)
        changed = max(cur.rowcount, 0)
        cur.execute(stmts.clear_stage)
        return changed

    def _write_table(self, conn: psycopg.Connection, cur: psycopg.Cursor, part: TableRows,
                     result: WriteResult) -> int:
        table = part.table
        try:
            with conn.transaction():  # a savepoint: a refused row undoes only this table
                if table.update and self._copy_direct(conn, cur, table.name, part.rows,
                                                      table.types):
                    return len(part.rows)
                return self._staged(cur, table, part.rows)
        except Exception as exc:
            if not row_fault(exc, conn):
                raise
            log.warning("PostgreSQL refused rows of table=%s rows=%d; bisecting to find them: "
                        "%s", table.name, len(part.rows), str(exc).strip()[:300])
        return self._bisect(conn, cur, part, 0, len(part.rows), result)

    def _bisect(self, conn: psycopg.Connection, cur: psycopg.Cursor, part: TableRows,
                lo: int, hi: int, result: WriteResult) -> int:
        """Write rows[lo:hi], halving around refused rows; returns rows changed."""
        table, rows = part.table, part.rows
        if hi - lo == 1:
            return self._write_one(conn, cur, part, lo, result)
        mid = (lo + hi) // 2
        changed = 0
        for a, b in ((lo, mid), (mid, hi)):
            try:
                with conn.transaction():
                    changed += self._staged(cur, table, rows[a:b])
            except Exception as exc:
                if not row_fault(exc, conn):
                    raise
                changed += self._bisect(conn, cur, part, a, b, result)
        return changed

    def _write_one(self, conn: psycopg.Connection, cur: psycopg.Cursor, part: TableRows,
                   i: int, result: WriteResult) -> int:
        stmts, source = STATEMENTS[part.table.name], part.sources[i]
        try:
            with conn.transaction():
                cur.execute(stmts.insert_one, part.rows[i])
                return max(cur.rowcount, 0)
        except Exception as exc:
            if not row_fault(exc, conn):
                raise
            error = f"{type(exc).__name__}: {str(exc).strip()}"
        if part.fallback is not None:
            # A dead letter that PostgreSQL refuses is kept as an unreadable one.
            with conn.transaction():
                cur.execute(stmts.insert_one, part.fallback(source, error))
                return max(cur.rowcount, 0)
        result.refused.append((part.table.name, source, error))
        return 0


__all__ = ["ROW_FAULT_CLASSES", "STATEMENTS", "WriteResult", "Writer", "row_fault", "statements"]
