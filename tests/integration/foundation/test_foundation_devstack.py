"""devstack's own failure modes: a taken port is a one-line error, not a stack trace."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

from devstack.postgres import create_database, drop_database, socket_dir, superuser_connect
from spoiler_common.settings import REPO_ROOT, PostgresSettings, StackSettings

pytestmark = pytest.mark.integration


def test_port_in_use_gives_one_clear_line(tmp_path, free_port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port))
        sock.listen()
        result = subprocess.run(
            [str(REPO_ROOT / ".venv/bin/python"), "-m", "devstack", "up", "--only", "prometheus"],
            # PYTHONPATH: this tree's devstack, not whichever checkout the venv was installed from.
            env={"SPOILER_STACK_STATE_DIR": str(tmp_path), "SPOILER_STACK_PROMETHEUS_PORT":
                 str(free_port), "SPOILER_PG_PASSWORD": "x", "PATH": "/usr/bin:/bin",
                 "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )
    assert result.returncode == 2
    assert f"port {free_port} is already in use" in result.stderr
    assert "SPOILER_STACK_PROMETHEUS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_reports_the_running_stack() -> None:
    result = subprocess.run([str(REPO_ROOT / ".venv/bin/python"), "-m", "devstack", "status"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0
    assert "running" in result.stdout


def test_up_twice_is_harmless_and_says_where_services_listen() -> None:
    result = subprocess.run([str(REPO_ROOT / ".venv/bin/python"), "-m", "devstack", "up"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    for where in ("127.0.0.1:9092", "127.0.0.1:5432", "http://127.0.0.1:9090"):
        assert where in result.stdout


def test_drop_database_waits_out_a_session_it_may_not_end() -> None:
    # WITH (FORCE) may end only the project role's own sessions: one it may not end (an
    # autovacuum worker in CI; a superuser's session here) must not fail the teardown.
    base = PostgresSettings()
    name = f"test_drop_{uuid.uuid4().hex[:8]}"
    create_database(base, name)
    other = superuser_connect(socket_dir(StackSettings()), base, dbname=name)
    closer = threading.Timer(2.0, other.close)
    closer.start()
    started = time.monotonic()
    try:
        drop_database(base, name, timeout_s=30)
    finally:
        closer.cancel()
        other.close()
    assert time.monotonic() - started >= 1.5  # it waited for the session, then dropped
    with psycopg.connect(base.conninfo()) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is None
