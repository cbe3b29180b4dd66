"""`spoiler-sink` (= `python -m sink`): run | migrate | dead-letters, thin over the sink.

Exit codes (docs/sink.md): 0 stopped cleanly (SIGTERM/SIGINT) or done; 1 an
unexpected error, logged with its traceback (the writer thread died, a fatal Kafka
error); 2 wrong configuration or a dependency unusable at start (an invalid
setting or option, no PostgreSQL password, an edited migration, the metrics port
taken; for `migrate`, PostgreSQL unreachable), one line on stderr.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Annotated, NoReturn

import psycopg
import typer

from sink.dead_letters_cli import app as dead_letters_app
from sink.exceptions import MigrationError
from sink.metrics import Health, serve
from sink.migrate import migrate as apply_migrations
from sink.service import GIL_SWITCH_INTERVAL_S, build_sink
from sink.settings import SinkSettings
from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.logging_setup import configure_logging, set_level
from spoiler_common.settings import KafkaSettings, PostgresSettings, load_settings

app = typer.Typer(help="PostgreSQL sink: exactly one row per review, prediction and label.",
                  no_args_is_help=True, add_completion=False)
log = logging.getLogger(__name__)
# Also installed as `spoiler-dead-letters`.
app.add_typer(dead_letters_app, name="dead-letters")

LogLevel = Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ...")]


def _refuse(message: object) -> NoReturn:
    """Exit 2: wrong input or configuration, said in one line."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def run(
    group_id: Annotated[str | None, typer.Option(help="Override SPOILER_SINK_GROUP_ID.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Override SPOILER_SINK_BATCH_SIZE.")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Override SPOILER_SINK_METRICS_PORT (0: none).")] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Consume reviews, predictions, labels and dead letters into PostgreSQL until SIGTERM."""
    try:
        set_level(log_level)
        settings = load_settings(SinkSettings, group_id=group_id, batch_size=batch_size,
                                 metrics_port=metrics_port)
        health = Health(stall_after_s=settings.stall_after_s)
        sink = build_sink(settings, load_settings(KafkaSettings), load_settings(PostgresSettings),
                          health)
    except SpoilerStreamError as exc:
        _refuse(exc)
    try:
        server = serve(health, settings.metrics_host, settings.metrics_port) \
            if settings.metrics_port else None
    except OSError as exc:
        _refuse(f"cannot serve /metrics on {settings.metrics_host}:{settings.metrics_port} "
                f"({exc.strerror}); choose another SPOILER_SINK_METRICS_PORT or --metrics-port")
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    signal.signal(signal.SIGTERM, lambda *_: sink.stop())
    signal.signal(signal.SIGINT, lambda *_: sink.stop())
    try:
        sink.run()
    except MigrationError as exc:
        _refuse(exc)
    except SpoilerStreamError as exc:
        log.error("Sink stopped on an error: %s", exc, exc_info=exc)
        raise typer.Exit(1) from exc
    finally:
        if server is not None:
            server.shutdown()


@app.command()
def migrate(log_level: LogLevel = "INFO") -> None:
    """Apply pending schema migrations (safe to run while sinks start)."""
    try:
        set_level(log_level)
        pg = load_settings(PostgresSettings)
        report = apply_migrations(pg.conninfo())
    except SpoilerStreamError as exc:
        _refuse(exc)
    except psycopg.OperationalError as exc:
        _refuse(f"cannot reach PostgreSQL at {pg.host}:{pg.port} database {pg.database}: "
                f"{str(exc).strip()} (is it running? `make up`)")
    if report.applied:
        typer.echo(f"applied migrations {', '.join(map(str, report.applied))} to {pg.database}")
    else:
        typer.echo(f"schema of {pg.database} is up to date (versions {report.already})")


def main() -> None:
    """The console script: logging configured once, then the command."""
    configure_logging()
    app()


__all__ = ["app", "main"]
