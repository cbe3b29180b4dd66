"""`python -m devstack up|down|status|classpath`: the native stack's one entry point."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

from devstack import kafka, postgres, prometheus
from devstack.envfile import ensure_env_file
from devstack.procs import StackError
from spoiler_common.settings import KafkaSettings, PostgresSettings, StackSettings

app = typer.Typer(add_completion=False, help="Native Kafka, PostgreSQL and Prometheus.")
SERVICES = ("kafka", "postgres", "prometheus")


def _run(step: Callable[[], str]) -> None:
    try:
        typer.echo(step())
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def up(
    only: list[str] = typer.Option(list(SERVICES), "--only", help="Services to start."),
) -> None:
    """Start the stack (idempotent) and print where each service listens."""
    if ensure_env_file():
        typer.echo("Wrote .env with a random SPOILER_PG_PASSWORD (kept out of git).")
    stack, kafka_s, pg = StackSettings(), KafkaSettings(), PostgresSettings()
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
    only: list[str] = typer.Option(list(SERVICES), "--only", help="Services to stop."),
) -> None:
    """Stop what `up` started (by PID file, never by process name)."""
    stack = StackSettings()
    for name, stop in (("prometheus", prometheus.down), ("postgres", postgres.down),
                       ("kafka", kafka.down)):
        if name in only:
            _run(lambda stop=stop: stop(stack))  # type: ignore[misc]


@app.command()
def status() -> None:
    """Show which services run and where."""
    stack, pg = StackSettings(), PostgresSettings()
    typer.echo(kafka.status(stack))
    typer.echo(postgres.status(stack, pg))
    typer.echo(prometheus.status(stack))


@app.command()
def classpath() -> None:
    """Print the Kafka classpath (resolving it with Maven if needed)."""
    _run(lambda: kafka.classpath(StackSettings()))


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

    stack = StackSettings()
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


if __name__ == "__main__":
    sys.exit(app())
