"""`scripts/pipeline.sh up|down|status`: the pipeline's services as native processes.

Runs after `python -m devstack up` (Kafka, PostgreSQL, Prometheus). Builds the
default model bundle if none is present, applies the database migrations, then
starts the sink, the stream worker, the monitor and a demo producer under
supervisord (devstack/supervise.py): a service that crashes is restarted with
backoff and its restarts are counted. Config, logs and socket are under
`.state/pipeline/`.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import typer

from devstack.exceptions import StackError
from devstack.procs import (
    port_open,
    require_port_free,
    stop_pid,
    wait_until,
)
from devstack.supervise import Program, Supervisor
from spoiler_common.bundle import manifest_file, read_manifest
from spoiler_common.exceptions import ModelBundleError
from spoiler_common.settings import REPO_ROOT, BundleSettings, StackSettings

app = typer.Typer(add_completion=False, help="The pipeline's services, natively.")
PY = sys.executable


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]
    port: int
    ready_path: str
    note: str


# The demo stream: synthetic reviews at a watchable pace (about 60% of what one
# worker thread scores with the demo bundle: 512 tokens, ~13 reviews/s), labels
# 30 s later, and a vocabulary drift (an unseen franchise) after 3,000 reviews so
# the drift panels and alerts move within minutes.
DEMO_PRODUCER = ("-m", "producer", "stream", "--n", "200000", "--seed", "7", "--rate", "8",
                 "--scenario", "vocabulary", "--drift-at", "3000", "--label-delay", "30")

SERVICES = (
    Service("sink", ("-m", "sink", "run"), 9102, "/healthz", "rows into PostgreSQL"),
    Service("stream_processor", ("-m", "stream_processor", "worker"), 6066, "/readyz",
            "POST /predict, GET /model"),
    Service("monitoring", ("-m", "monitoring", "run"), 9103, "/metrics", "quality and drift"),
    Service("producer", DEMO_PRODUCER, 9101, "/metrics", "demo stream"),
)


def _dir(stack: StackSettings) -> Path:
    path = stack.state_dir / "pipeline"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _http_ok(port: int, path: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
        return bool(resp.status == 200)


def ensure_bundle() -> None:
    """The served bundle (SPOILER_BUNDLE_PATH) as the worker will read it, else built."""
    served = BundleSettings().bundle_path
    try:
        read_manifest(served)
        typer.echo(f"Model bundle   {served} (present)")
        return
    except ModelBundleError as exc:
        if manifest_file(served).exists():  # present but unusable (an older format)
            typer.echo(f"Model bundle   {served} cannot be served: {exc}")
    typer.echo("Building the default model bundle (offline MiniLM, a few minutes)...")
    started = time.monotonic()
    result = subprocess.run([PY, "-m", "training", "ensure-bundle", "--out", str(served)],
                            cwd=REPO_ROOT)
    if result.returncode != 0:
        raise StackError("building the default model bundle failed (see above)")
    typer.echo(f"Model bundle   {served} built in {time.monotonic() - started:.0f}s")


def migrate() -> None:
    result = subprocess.run([PY, "-m", "sink", "migrate"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"database migrations failed:\n{result.stdout}{result.stderr}")


def supervisor(stack: StackSettings) -> Supervisor:
    return Supervisor(_dir(stack), REPO_ROOT)


def programs() -> list[Program]:
    return [Program(s.name, (PY, *s.args)) for s in SERVICES]


def start(service: Service, sup: Supervisor, stack: StackSettings) -> str:
    if sup.state(service.name) in ("RUNNING", "STARTING", "BACKOFF"):
        state = "already running"
    else:
        require_port_free(service.port, service.name, "the service's port setting")
        sup.start_program(service.name)
        waited = wait_until(lambda: _http_ok(service.port, service.ready_path),
                            max(stack.start_timeout_s, 120), service.name,
                            sup.program_log(service.name), sup.pid(service.name))
        state = f"started in {waited:.1f}s"
    where = f"http://127.0.0.1:{service.port}"
    return f"{service.name:16} {where:24} {state:20} {service.note}"


@app.command()
def up() -> None:
    """Build the bundle if missing, migrate, start every service, say where to look."""
    stack = StackSettings()
    try:
        ensure_bundle()
        migrate()
        sup = supervisor(stack)
        sup.start(programs())
        for service in SERVICES:
            typer.echo(start(service, sup, stack))
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        "\nWhere to look:\n"
        "  Prometheus      http://127.0.0.1:9090/alerts   (rules firing)\n"
        "                  http://127.0.0.1:9090/graph?g0.expr=spoiler_model_accuracy\n"
        "  Try the model   curl -s -XPOST 127.0.0.1:6066/predict -d '{\"text\": \"Turns out the "
        "butler was the father all along\"}'\n"
        "  SQL             PGPASSWORD=$(sed -n 's/^SPOILER_PG_PASSWORD=//p' .env) psql -h "
        "127.0.0.1 -U spoiler spoiler \\\n                    -c 'SELECT review_id, "
        "spoiler_probability, predicted_spoiler, actual_spoiler FROM review_outcomes "
        "ORDER BY produced_at DESC LIMIT 5'\n"
        "  Kafka           bin/kafka-consumer-groups --bootstrap-server 127.0.0.1:9092 "
        "--describe --all-groups\n"
        "                  bin/kafka-console-consumer --bootstrap-server 127.0.0.1:9092 "
        "--topic spoiler-predictions --max-messages 3\n"
        "  Logs            make logs        Status  make status        Stop  make down"
    )


@app.command()
def down() -> None:
    """Stop the pipeline's services (supervisord stops them, then itself)."""
    stack = StackSettings()
    sup = supervisor(stack)
    was_running = {s.name: sup.running() and sup.pid(s.name) is not None for s in SERVICES}
    sup.stop()
    for service in reversed(SERVICES):
        # PID files of a pipeline started before supervision (older checkouts).
        legacy = stop_pid(_dir(stack) / f"{service.name}.pid", service.name)
        stopped = was_running[service.name] or legacy
        typer.echo(f"{service.name:16} {'stopped' if stopped else 'was not running'}")


@app.command()
def status() -> None:
    """Which pipeline services run, and how often supervisord restarted each."""
    stack = StackSettings()
    sup = supervisor(stack)
    up_ = sup.running()
    for service in SERVICES:
        state = sup.state(service.name) if up_ else "STOPPED"
        pid = sup.pid(service.name) if up_ else None
        listening = port_open(service.port)
        restarts = sup.restarts(service.name) if up_ else 0
        shown = f"{state.lower()} (pid {pid})" if pid else state.lower()
        typer.echo(f"{service.name:16} http://127.0.0.1:{service.port:<6}  {shown:24} "
                   f"restarts {restarts}"
                   + ("" if pid is None or listening else " (port not answering)"))


if __name__ == "__main__":
    app()
