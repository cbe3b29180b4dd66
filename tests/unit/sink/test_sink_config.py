"""Settings, CLI options, migration files and health (no I/O beyond reading packaged files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from sink.cli import app
from sink.exceptions import MigrationError
from sink.metrics import HEALTHY, Health
from sink.migrate import MIGRATIONS_DIR, load_migrations
from sink.settings import SinkSettings

pytestmark = pytest.mark.unit


def test_sink_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOILER_SINK_BATCH_SIZE", "123")
    monkeypatch.setenv("SPOILER_SINK_GROUP_ID", "g")
    settings = SinkSettings()
    assert (settings.batch_size, settings.group_id, settings.metrics_port) == (123, "g", 9102)


def test_sink_settings_reject_nonsense() -> None:
    with pytest.raises(ValidationError, match="RETRY_MAX_S"):
        SinkSettings(retry_initial_s=5, retry_max_s=1)
    with pytest.raises(ValidationError):
        SinkSettings(batch_size=0)


def test_sink_every_setting_is_documented() -> None:
    assert all(f.description for f in SinkSettings.model_fields.values())


def test_sink_packaged_migrations_are_ordered_and_well_named() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert len({m.checksum for m in migrations}) == len(migrations)
    assert MIGRATIONS_DIR.name == "migrations"


@pytest.mark.parametrize(("names", "message"), [
    (["1_bad.sql"], "is not named"),
    (["0001_a.sql", "0001_b.sql"], "two migrations have version 1"),
])
def test_sink_bad_migration_files_are_refused(
    tmp_path: Path, names: list[str], message: str
) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_sink_health_reports_database_and_stalls() -> None:
    health = Health(stall_after_s=60)
    health.set_database(True, "ok")
    assert health.report()[0] and HEALTHY._value.get() == 1
    health.set_database(False, "DatabaseUnavailable: connection refused")
    ok, body = health.report()
    assert not ok and body["database"] == "unavailable" and "refused" in str(body["detail"])
    assert HEALTHY._value.get() == 0
    health.set_database(True, "ok")
    health.last_loop -= 120
    ok, body = health.report()
    assert not ok and body["detail"] == "consume loop stalled"



@pytest.mark.parametrize(("args", "names"), [
    (["run", "--batch-size", "0"], "SPOILER_SINK_BATCH_SIZE"),
    (["run", "--metrics-port", "70000"], "SPOILER_SINK_METRICS_PORT"),
    (["run", "--log-level", "LOUD"], "unknown log level"),
])
def test_sink_cli_refuses_bad_options_with_exit_code_2(args: list[str], names: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert names in result.output and "Traceback" not in result.output
