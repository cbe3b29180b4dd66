"""Typer CLI of the monitor: `run`, `once`, `push-dashboards`, `annotate`, `build-dashboards`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import start_http_server

from monitoring.exceptions import MonitorError
from monitoring.settings import MonitorSettings
from spoiler_common.logging_setup import configure_logging

app = typer.Typer(help="Model and pipeline monitoring for spoiler-stream.",
                  no_args_is_help=True, add_completion=False)
log = logging.getLogger(__name__)


@app.command()
def run(
    port: Annotated[int | None, typer.Option("--port", help="Metrics port "
                                             "(default SPOILER_MONITOR_METRICS_PORT)")] = None,
) -> None:
    """Run the monitor service: recompute every interval, serve /metrics."""
    from monitoring.service import bootstrap

    settings = MonitorSettings()
    configure_logging(settings.log_level)
    try:
        monitor = bootstrap(settings)
    except MonitorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    listen = port or settings.metrics_port
    start_http_server(listen, addr=settings.metrics_host, registry=monitor.metrics.registry)
    log.info("Serving metrics. url=http://%s:%d/metrics", settings.metrics_host, listen)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    monitor.run_forever(stop)


@app.command()
def once(
    as_json: Annotated[bool, typer.Option("--json", help="Print samples as JSON lines")] = False,
) -> None:
    """Compute once and print the samples (no server): a quick look at the numbers."""
    from monitoring.service import bootstrap

    settings = MonitorSettings()
    configure_logging(settings.log_level)
    monitor = bootstrap(settings)
    try:
        samples = monitor.run_once()
    finally:
        monitor.close()
    for s in samples:
        if as_json:
            typer.echo(json.dumps({"name": s.name, "labels": s.labels, "value": s.value}))
        else:
            labels = ",".join(f'{k}="{v}"' for k, v in s.labels.items())
            typer.echo(f"{s.name}{{{labels}}} {s.value:g}")


@app.command("push-dashboards")
def push_dashboards(
    directory: Annotated[Path, typer.Option("--dir", help="Dashboard JSON folder")] = Path(
        "grafana/dashboards"),
    folder_uid: Annotated[str, typer.Option("--folder-uid", help="Grafana folder uid")] = (
        "spoiler-stream"),
) -> None:
    """Create or overwrite the dashboards in a running Grafana (SPOILER_MONITOR_GRAFANA_URL)."""
    from monitoring import grafana

    settings = MonitorSettings()
    configure_logging(settings.log_level)
    try:
        urls = grafana.push_dashboards(grafana.api(settings), grafana.load_dashboards(directory),
                                       folder_uid)
    except MonitorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for url in urls:
        typer.echo(f"pushed {url}")


@app.command()
def annotate(
    text: Annotated[str, typer.Argument(help="Annotation text")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable)")] = None,
) -> None:
    """Write one annotation to Grafana (e.g. from a deploy script)."""
    from monitoring import grafana

    settings = MonitorSettings()
    configure_logging(settings.log_level)
    try:
        client = grafana.api(settings)
    except MonitorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not grafana.GrafanaNotifier(client).annotate(list(tag or []), text):
        typer.echo("error: Grafana did not accept the annotation (see the log)", err=True)
        raise typer.Exit(1)
    typer.echo("annotation written")



@app.command("build-dashboards")
def build_dashboards(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the JSON")] = Path(
        "grafana/dashboards"),
) -> None:
    """Regenerate grafana/dashboards/*.json from monitoring/dashboards.py."""
    from monitoring import dashboards

    for path in dashboards.write(directory):
        typer.echo(f"wrote {path}")


__all__ = ["app"]
