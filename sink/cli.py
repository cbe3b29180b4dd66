"""`python -m sink run | migrate`: thin entry points over :mod:`sink.service`."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Annotated, Any

import psycopg
import typer

from sink.dead_letters_cli import app as dead_letters_app
from sink.exceptions import MigrationError
from sink.metrics import Health, serve
from sink.migrate import migrate as apply_migrations
from sink.service import GIL_SWITCH_INTERVAL_S, build_sink
from sink.settings import SinkSettings
from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.settings import KafkaSettings, PostgresSettings

app = typer.Typer(help="PostgreSQL sink: exactly one row per review, prediction and label.",
                  no_args_is_help=True, add_completion=False)
log = logging.getLogger("sink")
# Also installed as `spoiler-dead-letters`.
app.add_typer(dead_letters_app, name="dead-letters")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def run(
    group_id: Annotated[str | None, typer.Option(help="Override SPOILER_SINK_GROUP_ID.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Override SPOILER_SINK_BATCH_SIZE.")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Override SPOILER_SINK_METRICS_PORT (0: none).")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ...")] = "INFO",
) -> None:
    """Consume reviews, predictions, labels and dead letters into PostgreSQL until SIGTERM."""
    _logging(log_level)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    overrides: dict[str, Any] = {
        k: v for k, v in
        {"group_id": group_id, "batch_size": batch_size, "metrics_port": metrics_port}.items()
        if v is not None
    }
    settings = SinkSettings(**overrides)
    health = Health(stall_after_s=settings.stall_after_s)
    server = serve(health, settings.metrics_host, settings.metrics_port) \
        if settings.metrics_port else None
    try:
        sink = build_sink(settings, KafkaSettings(), PostgresSettings(), health)
        signal.signal(signal.SIGTERM, lambda *_: sink.stop())
        signal.signal(signal.SIGINT, lambda *_: sink.stop())
        sink.run()
    except SpoilerStreamError as exc:
        log.error("%s", exc)
        raise typer.Exit(1) from exc
    finally:
        if server is not None:
            server.shutdown()


@app.command()
def migrate(
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ...")] = "INFO",
) -> None:
    """Apply pending schema migrations (safe to run while sinks start)."""
    _logging(log_level)
    pg = PostgresSettings()
    try:
        report = apply_migrations(pg.conninfo())
    except (MigrationError, SpoilerStreamError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except psycopg.OperationalError as exc:
        typer.echo(f"error: cannot reach PostgreSQL at {pg.host}:{pg.port} database "
                   f"{pg.database}: {str(exc).strip()} (is it running? `make up`)", err=True)
        raise typer.Exit(1) from exc
    if report.applied:
        typer.echo(f"applied migrations {', '.join(map(str, report.applied))} to {pg.database}")
    else:
        typer.echo(f"schema of {pg.database} is up to date (versions {report.already})")
