"""`spoiler-monitor` (= `python -m monitoring`): run | once | push-dashboards | annotate |
build-dashboards.

Exit codes (docs/monitoring.md): 0 stopped cleanly (SIGTERM/SIGINT) or done; 1 an
unexpected error, logged with its traceback; 2 wrong configuration or a dependency
unusable (an invalid setting or option, the metrics port taken, Grafana unreachable
or refusing a request), one line on stderr.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from monitoring.settings import MonitorSettings
from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.logging_setup import configure_logging, set_level
from spoiler_common.settings import load_settings

app = typer.Typer(help="Model and pipeline monitoring for spoiler-stream.",
                  no_args_is_help=True, add_completion=False)
log = logging.getLogger(__name__)
# Relative to the working directory, as the docs show it (a clone's root).
DASHBOARDS = Path("grafana/dashboards")


def _refuse(message: object) -> NoReturn:
    """Exit 2: wrong input or configuration, said in one line."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _settings(**overrides: object) -> MonitorSettings:
    """The monitor's settings with the command's overrides, logging at their level."""
    settings = load_settings(MonitorSettings, **overrides)
    set_level(settings.log_level)
    return settings


@app.command()
def run(
    port: Annotated[int | None, typer.Option(
        "--port", help="Override SPOILER_MONITOR_METRICS_PORT.")] = None,
) -> None:
    """Run the monitor service: recompute every interval, serve /metrics."""
    from prometheus_client import start_http_server

    from monitoring.service import build_monitor

    try:
        settings = _settings(metrics_port=port)
        monitor = build_monitor(settings)
    except SpoilerStreamError as exc:
        _refuse(exc)
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host,
                          registry=monitor.metrics.registry)
    except OSError as exc:
        monitor.close()
        _refuse(f"cannot serve /metrics on {settings.metrics_host}:{settings.metrics_port} "
                f"({exc.strerror}); choose another SPOILER_MONITOR_METRICS_PORT or --port")
    log.info("Serving metrics. url=http://%s:%d/metrics", settings.metrics_host,
             settings.metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    monitor.run_forever(stop)


@app.command()
def once(
    as_json: Annotated[bool, typer.Option("--json", help="Print samples as JSON lines")] = False,
) -> None:
    """Compute once and print the samples (no server): a quick look at the numbers."""
    from monitoring.service import build_monitor

    try:
        monitor = build_monitor(_settings())
    except SpoilerStreamError as exc:
        _refuse(exc)
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
    directory: Annotated[Path, typer.Option("--dir", help="Dashboard JSON folder")] = DASHBOARDS,
    folder_uid: Annotated[str, typer.Option("--folder-uid", help="Grafana folder uid")] = (
        "spoiler-stream"),
) -> None:
    """Create or overwrite the dashboards in a running Grafana (SPOILER_MONITOR_GRAFANA_URL)."""
    from monitoring import grafana

    try:
        client = grafana.api(_settings())
        urls = grafana.push_dashboards(client, grafana.load_dashboards(directory), folder_uid)
    except SpoilerStreamError as exc:
        _refuse(exc)
    for url in urls:
        typer.echo(f"pushed {url}")


@app.command()
def annotate(
    text: Annotated[str, typer.Argument(help="Annotation text")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable)")] = None,
) -> None:
    """Write one annotation to Grafana (e.g. from a deploy script)."""
    from monitoring import grafana

    try:
        client = grafana.api(_settings())
    except SpoilerStreamError as exc:
        _refuse(exc)
    if not grafana.GrafanaNotifier(client).annotate(list(tag or []), text):
        _refuse("Grafana did not accept the annotation (the log says why); check "
                "SPOILER_MONITOR_GRAFANA_URL and the token's Editor role")
    typer.echo("annotation written")


@app.command("build-dashboards")
def build_dashboards(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the JSON")] = (
        DASHBOARDS),
) -> None:
    """Regenerate grafana/dashboards/*.json from monitoring/dashboards.py (`make dashboards`)."""
    from monitoring import dashboards

    for path in dashboards.write(directory):
        typer.echo(f"wrote {path}")


def main() -> None:
    """The console script: logging configured once, then the command."""
    configure_logging()
    app()


__all__ = ["app", "main"]
