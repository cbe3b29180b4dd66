"""`spoiler-dead-letters list | replay`: inspect the dead_letters table, re-publish chosen ones.

    spoiler-dead-letters list                                # counts by service and reason
    spoiler-dead-letters list --reason internal_error --rows  # the rows themselves
    spoiler-dead-letters replay --reason internal_error --since 2026-01-02T10:00:00Z --dry-run
    spoiler-dead-letters replay --id 41 --id 42
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

import psycopg
import typer
from psycopg import sql

from sink.replay import Selection, replay
from spoiler_common.logging_setup import configure_logging
from spoiler_common.settings import KafkaSettings, PostgresSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Dead letters: inspect them, and re-publish them to their source topic.")
log = logging.getLogger("sink.dead_letters")

Ids = Annotated[list[int] | None, typer.Option("--id", help="Dead letter id (repeatable).")]
Services = Annotated[list[str] | None, typer.Option(
    "--service", help="Rejecting service: stream_processor, sink, ... (repeatable).")]
Reasons = Annotated[list[str] | None, typer.Option(
    "--reason", help="Reason code, e.g. internal_error (repeatable).")]
Topics = Annotated[list[str] | None, typer.Option(
    "--source-topic", help="Full source topic name (repeatable).")]
Since = Annotated[datetime | None, typer.Option(help="failed_at at or after (ISO 8601).")]
Until = Annotated[datetime | None, typer.Option(help="failed_at before (ISO 8601).")]
Again = Annotated[bool, typer.Option("--include-replayed",
                                     help="Also rows replayed before.")]
Limit = Annotated[int | None, typer.Option(help="At most this many rows.")]


def _selection(ids: list[int] | None, service: list[str] | None, reason: list[str] | None,
               source_topic: list[str] | None, since: datetime | None, until: datetime | None,
               include_replayed: bool, limit: int | None) -> Selection:
    return Selection(ids or (), service or (), reason or (), source_topic or (), since, until,
                     include_replayed, limit)


@app.command("list")
def list_(
    ids: Ids = None, service: Services = None, reason: Reasons = None,
    source_topic: Topics = None, since: Since = None, until: Until = None,
    include_replayed: Again = True, limit: Limit = 50,
    rows: Annotated[bool, typer.Option("--rows", help="Show rows, not counts.")] = False,
) -> None:
    """Counts of dead letters by service and reason, or (--rows) the rows themselves."""
    selection = _selection(ids, service, reason, source_topic, since, until, include_replayed,
                           None)
    where, params = selection.where()
    with psycopg.connect(PostgresSettings().conninfo()) as conn:
        if not rows:
            query = sql.SQL("SELECT service, reason, count(*), count(replayed_at), "
                            "max(failed_at) FROM dead_letters WHERE {} GROUP BY 1, 2 "
                            "ORDER BY 3 DESC").format(where)
            typer.echo("service            reason                   count  replayed  last")
            for svc, why, count, replayed, last in conn.execute(query, params):
                typer.echo(f"{svc:18} {why:24} {count:5}  {replayed:8}  {last}")
            return
        query = sql.SQL("SELECT id, service, reason, source_topic, source_partition, "
                        "source_offset, key, failed_at, replayed_at, left(error, 160) "
                        "FROM dead_letters WHERE {} ORDER BY id DESC LIMIT {}").format(
            where, sql.Literal(limit or 50))
        for row in conn.execute(query, params):
            (row_id, svc, why, topic, part, off, key, failed, replayed, error) = row
            typer.echo(f"#{row_id} {svc} {why} {topic}/{part}@{off} key={key!r} "
                       f"failed_at={failed} replayed_at={replayed}\n    {error}")


@app.command("replay")
def replay_(
    ids: Ids = None, service: Services = None, reason: Reasons = None,
    source_topic: Topics = None, since: Since = None, until: Until = None,
    include_replayed: Again = False, limit: Limit = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent.")] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ...")] = "WARNING",
) -> None:
    """Re-publish the chosen dead letters' original messages to their source topics."""
    configure_logging(log_level)
    if not any((ids, service, reason, source_topic, since, until)):
        typer.echo("error: choose what to replay (--id, --service, --reason, --source-topic, "
                   "--since or --until); `list` shows what there is", err=True)
        raise typer.Exit(2)
    selection = _selection(ids, service, reason, source_topic, since, until, include_replayed,
                           limit)
    report = replay(PostgresSettings().conninfo(), KafkaSettings(), selection, dry_run=dry_run)
    verb = "would publish" if dry_run else "published"
    count = report.messages - len(report.unavailable) if dry_run else report.published
    typer.echo(f"{report.selected_rows} dead letter rows, {report.messages} distinct source "
               f"messages: {verb} {count} ({report.from_source_topic} read back from their "
               f"topic because the stored copy was truncated)")
    for line in report.unavailable + report.failed:
        typer.echo(f"  not replayed: {line}")
    raise typer.Exit(1 if report.failed else 0)


def main() -> None:
    app(prog_name="spoiler-dead-letters")


if __name__ == "__main__":
    main()
