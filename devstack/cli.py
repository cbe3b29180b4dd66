"""`spoiler-stack` (= `python -m devstack`): up | down | status | classpath | alert-proof, the
native stack's one entry point.

Exit codes (docs/architecture.md): 0 done; 1 an unexpected error, logged with
its traceback; 2 a service that cannot start or stop (a port taken, a tool not
installed, an invalid setting or `--only` name), one line on stderr that says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NoReturn

import typer

from devstack import kafka, postgres, prometheus
from devstack.envfile import ensure_env_file
from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.logging_setup import configure_logging
from spoiler_common.settings import KafkaSettings, PostgresSettings, StackSettings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Native Kafka, PostgreSQL and Prometheus.")
SERVICES = ("kafka", "postgres", "prometheus")
ONLY_HELP = f"Services, repeatable: {', '.join(SERVICES)} (default: all)."


def _refuse(message: object) -> NoReturn:
    """Exit 2: a service that cannot be used, or wrong configuration, said in one line."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _run(step: Callable[[], str]) -> None:
    try:
        typer.echo(step())
    except SpoilerStreamError as exc:
        _refuse(exc)


def _stack() -> StackSettings:
    try:
        return load_settings(StackSettings)
    except SpoilerStreamError as exc:
        _refuse(exc)


def _only(names: list[str]) -> list[str]:
    unknown = sorted(set(names) - set(SERVICES))
    if unknown:
        raise typer.BadParameter(f"unknown service {', '.join(unknown)}; choose from "
                                 f"{', '.join(SERVICES)}", param_hint="--only")
    return names


@app.command()
def up(
    only: list[str] = typer.Option(list(SERVICES), "--only", help=ONLY_HELP, callback=_only),
) -> None:
    """Start the stack (idempotent) and print where each service listens."""
    if ensure_env_file():
        typer.echo("Wrote .env with a random SPOILER_PG_PASSWORD (kept out of git).")
    try:
        stack = load_settings(StackSettings)
        kafka_s, pg = load_settings(KafkaSettings), load_settings(PostgresSettings)
    except SpoilerStreamError as exc:
        _refuse(exc)
    started = time.monotonic()
    if "kafka" in only:
        _run(lambda: kafka.up(stack, kafka_s))
    if "postgres" in only:
        _run(lambda: postgres.up(stack, pg))
    if "prometheus" in only:
        _run(lambda: prometheus.up(stack))
    elapsed = time.monotonic() - started
    typer.echo(f"Stack ready in {elapsed:.1f}s; state and logs in {stack.state_dir}")


@app.command()
def down(
    only: list[str] = typer.Option(list(SERVICES), "--only", help=ONLY_HELP, callback=_only),
) -> None:
    """Stop what `up` started (by PID file, never by process name)."""
    stack = _stack()
    stops: dict[str, Callable[[StackSettings], str]] = {
        "prometheus": prometheus.down, "postgres": postgres.down, "kafka": kafka.down}
    for name, stop in stops.items():
        if name in only:
            _run(partial(stop, stack))


@app.command()
def status() -> None:
    """Show which services run and where."""
    stack = _stack()
    try:
        pg = load_settings(PostgresSettings)
    except SpoilerStreamError as exc:
        _refuse(exc)
    typer.echo(kafka.status(stack))
    typer.echo(postgres.status(stack, pg))
    typer.echo(prometheus.status(stack))


@app.command()
def classpath() -> None:
    """Print the Kafka classpath (resolving it with Maven if needed)."""
    stack = _stack()
    _run(lambda: kafka.classpath(stack))


@app.command("alert-proof")
def alert_proof(
    bundle: Path | None = typer.Option(
        None, "--bundle", help="Model bundle to serve (default: the tiny recipe on 2,000 "
        "reviews, built once into .state/alert-proof)."),
    write: Path | None = typer.Option(
        None, "--write", help="Rewrite the results table in this file (docs/monitoring.md)."),
    stable_reviews: int = typer.Option(20_000, "--stable-reviews", min=0,
                                       help="Reviews of the stable replay (0 skips it)."),
    as_json: bool = typer.Option(False, "--json", help="Also print the raw results as JSON."),
) -> None:
    """Prove the model alerts on the running stack: a stable replay fires none, each drift
    scenario fires its own (see docs/monitoring.md)."""
    import tempfile

    from devstack import alert_proof as proof
    from spoiler_common.bundle import read_manifest

    stack = _stack()
    served = bundle or proof.proof_bundle(stack.state_dir / "alert-proof")
    with tempfile.TemporaryDirectory(prefix="alert-proof-") as tmp:
        stable = (proof.run_stable(served, Path(tmp) / "stable", reviews=stable_reviews)
                  if stable_reviews else None)
        results = proof.run_scenarios(served, Path(tmp) / "scenarios")
    text = proof.table(read_manifest(served), stable, results)
    typer.echo(text)
    if as_json:
        typer.echo(proof.to_json(stable, results))
    if write is not None:
        proof.write_docs(write, text)
        typer.echo(f"wrote the table into {write}")


def main() -> None:
    """The console script: logging configured once, then the command."""
    configure_logging()
    app()


__all__ = ["app", "main"]
