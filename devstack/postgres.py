"""PostgreSQL from Debian's package: a private cluster under the state folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from devstack.exceptions import StackError
from devstack.procs import port_open, require_port_free, wait_until
from spoiler_common.settings import PostgresSettings, StackSettings

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _bin(name: str) -> str:
    for directory in PG_BIN_CANDIDATES:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found:
        return found
    raise StackError(
        f"PostgreSQL's `{name}` is not installed: run `make deps` (apt package postgresql)"
    )


def _as_owner(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run the server as the `postgres` user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _dirs(stack: StackSettings) -> tuple[Path, Path, Path]:
    base = stack.state_dir / "postgres"
    if os.geteuid() == 0:
        base = _reachable_by_postgres(base)
    base.mkdir(parents=True, exist_ok=True)
    return base / "data", base / "run", base / "postgres.log"


def _reachable_by_postgres(base: Path) -> Path:
    """As root the server runs as `postgres`, which may not enter a private parent
    (a clone under /root, say). Then keep the cluster in /var/tmp, linked from
    the state folder so `.state/postgres` still leads to it."""
    import hashlib
    import pwd

    pg = pwd.getpwnam("postgres")
    if base.is_symlink():
        base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    os.chown(base, pg.pw_uid, pg.pw_gid)
    if subprocess.run(_as_owner(["test", "-w", str(base)]), check=False).returncode == 0:
        return base
    digest = hashlib.sha1(str(base).encode()).hexdigest()[:12]
    outside = Path("/var/tmp") / f"spoiler-stream-{digest}" / "postgres"
    outside.mkdir(parents=True, exist_ok=True)
    os.chown(outside.parent, pg.pw_uid, pg.pw_gid)
    os.chown(outside, pg.pw_uid, pg.pw_gid)
    base.rmdir()
    base.symlink_to(outside)
    return outside


def up(stack: StackSettings, pg: PostgresSettings) -> str:
    data, run, log = _dirs(stack)
    where = f"{pg.host}:{pg.port}"
    if pg.password is None:
        raise StackError("SPOILER_PG_PASSWORD is not set (make up writes one to .env)")
    running = (data / "postmaster.pid").exists() and _pg_ctl_status(data)
    if not running:
        require_port_free(pg.port, "PostgreSQL", "SPOILER_PG_PORT")
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                _as_owner([_bin("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                           "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256"]),
                check=True, capture_output=True,
            )
        run.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(run, "postgres", "postgres")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={pg.port} "
                f"-c unix_socket_directories={run} -c max_connections=200 "
                "-c fsync=on -c synchronous_commit=on")
        result = subprocess.run(
            _as_owner([_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                       "-w", "-t", str(int(stack.start_timeout_s)), "start"]),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start: {result.stdout}{result.stderr}; see {log}")
        status = "started"
    else:
        status = "already running"
    wait_until(lambda: port_open(pg.port), stack.start_timeout_s, "PostgreSQL", log)
    _ensure_role(run, pg)
    return f"PostgreSQL   {where:28} {status} (database {pg.database}, role {pg.user})"


def _ensure_role(run: Path, pg: PostgresSettings) -> None:
    """Create or update the project's role and database (password from settings)."""
    assert pg.password is not None
    with superuser_connect(run, pg) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.user,)).fetchone()
        verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                verb, sql.Identifier(pg.user), sql.Literal(pg.password.get_secret_value())
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (pg.database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(pg.database), sql.Identifier(pg.user)))


def socket_dir(stack: StackSettings) -> Path:
    """Where the native server keeps its Unix socket (the superuser logs in there)."""
    return _dirs(stack)[1]


def superuser_connect(run: Path, pg: PostgresSettings, dbname: str = "postgres"
                      ) -> psycopg.Connection[tuple[object, ...]]:
    """A session as the cluster's superuser over the socket in `run` (peer authentication)."""
    return psycopg.connect(host=str(run), port=pg.port, user="postgres", dbname=dbname,
                           autocommit=True)


def _pg_ctl_status(data: Path) -> bool:
    result = subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "status"]),
                            capture_output=True)
    return result.returncode == 0


def down(stack: StackSettings) -> str:
    data = (stack.state_dir / "postgres").resolve() / "data"
    if not data.exists() or not _pg_ctl_status(data):
        return "PostgreSQL   was not running"
    subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                   check=False, capture_output=True)
    return "PostgreSQL   stopped"


def status(stack: StackSettings, pg: PostgresSettings) -> str:
    data = (stack.state_dir / "postgres").resolve() / "data"
    running = data.exists() and _pg_ctl_status(data)
    where = f"{pg.host}:{pg.port}"
    return f"PostgreSQL   {where:28} " + ("running" if running else "stopped")


# -- scratch databases (tests, benchmarks, the alert proof) -------------------------------
def create_database(base: PostgresSettings, name: str) -> PostgresSettings:
    """Create the empty database `name` on `base`'s server; settings that point at it."""
    with psycopg.connect(base.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return base.model_copy(update={"database": name})


def drop_database(base: PostgresSettings, name: str, timeout_s: float = 60.0) -> None:
    """Drop `name`, ending the sessions still connected to it.

    `WITH (FORCE)` terminates other sessions, but PostgreSQL lets a role that is not a
    superuser terminate only its own: an autovacuum worker (no role) that happens to be
    analysing the fresh database makes it refuse with InsufficientPrivilege. Plain
    `DROP DATABASE` stops autovacuum workers itself, so fall back to it, and retry while
    a session is still closing (ObjectInUse)."""
    deadline = time.monotonic() + timeout_s
    query = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
    force = query + sql.SQL(" WITH (FORCE)")
    with psycopg.connect(base.conninfo(), autocommit=True) as conn:
        while True:
            try:
                try:
                    conn.execute(force)
                except psycopg.errors.InsufficientPrivilege:
                    conn.execute(query)
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@contextlib.contextmanager
def scratch_database(name: str, base: PostgresSettings | None = None
                     ) -> Iterator[PostgresSettings]:
    """A fresh, empty database `name` for the duration of the block; dropped afterwards."""
    base = base or PostgresSettings()
    pg = create_database(base, name)
    try:
        yield pg
    finally:
        drop_database(base, name)
