"""Versioned SQL migrations, applied in order, once, under an advisory lock.

Files are ``sink/migrations/NNNN_name.sql``. Each runs in its own transaction
together with its row in ``schema_migrations`` (version, name, sha256), so a
crash leaves either both or neither. Several processes may start at once: the
session-level advisory lock serialises them and the later ones find nothing
to do. An applied file whose checksum changed is an error, not silently rerun:
write a new migration instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sink.exceptions import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary but fixed: every sink (and `migrate`) contends for the same lock.
ADVISORY_LOCK_KEY = 0x5EC7_51CC
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a badly named or duplicate file is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"migration file {path.name} is not named NNNN_lower_case_name.sql; rename it"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations have version {version}: {found[version].name} and "
                f"{match.group(2)}; renumber one"
            )
        found[version] = Migration(version, match.group(2), path.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


@dataclass(frozen=True)
class MigrationReport:
    applied: list[int]
    already: list[int]


def migrate(conninfo: str, migrations: list[Migration] | None = None) -> MigrationReport:
    """Apply pending migrations; safe to call from many processes at once."""
    todo = load_migrations() if migrations is None else migrations
    applied: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            done = {
                version: checksum
                for version, checksum in conn.execute(
                    "SELECT version, checksum FROM schema_migrations"
                ).fetchall()
            }
            for migration in todo:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version}_{migration.name} was changed after "
                            "it was applied; revert the edit and add a new migration instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode("utf-8"))
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied.append(migration.version)
                log.info(
                    "Applied migration version=%d name=%s", migration.version, migration.name
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return MigrationReport(applied, sorted(set(done)))


__all__ = ["Migration", "MigrationReport", "load_migrations", "migrate"]
