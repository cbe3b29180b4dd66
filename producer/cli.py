"""`python -m producer`: thin Typer commands; the logic lives in the modules beside it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from producer.progress import ProgressReporter
from producer.synth import SCENARIOS, generate
from producer.synth.writer import write_jsonl
from spoiler_common.logging_setup import configure_logging

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Replay IMDB-style reviews onto Kafka, generate synthetic ones, simulate drift.",
    no_args_is_help=True,
    add_completion=False,
)

SCENARIO_HELP = f"Drift scenario, one of: {', '.join(SCENARIOS)} (see docs/producer.md)."


@app.callback()
def main() -> None:
    """Replay IMDB-style reviews onto Kafka, generate synthetic ones, simulate drift."""


def _check_scenario(scenario: str) -> str:
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; choose one of "
                                 f"{', '.join(SCENARIOS)}")
    return scenario


@app.command()
def synth(
    n: int = typer.Option(..., "--n", min=0, help="Number of reviews to generate."),
    seed: int = typer.Option(..., "--seed", min=0, help="Random seed (same seed, same bytes)."),
    out: Path = typer.Option(..., "--out", help="Output file, JSON lines; gzip if it ends in .gz."),
    scenario: str = typer.Option("none", "--scenario", help=SCENARIO_HELP,
                                 callback=_check_scenario),
    drift_at: int | None = typer.Option(
        None, "--drift-at", min=0, help="Record index where the scenario starts (default 0)."),
    start_index: int = typer.Option(0, "--start-index", min=0,
                                    help="First record index (resume a stream)."),
    stats_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
    log_level: str = typer.Option("INFO", "--log-level", help="Logging level."),
) -> None:
    """Generate synthetic reviews in the IMDB Spoiler Dataset layout into a JSON-lines file."""
    configure_logging(log_level)
    with ProgressReporter("generating", n) as progress:
        def counted():  # type: ignore[no-untyped-def]
            for record in generate(n, seed, scenario, drift_at, start_index):
                progress.advance()
                yield record

        stats = write_jsonl(counted(), out)
    summary = {"out": str(out), "seed": seed, "scenario": scenario, "drift_at": drift_at,
               **stats.as_dict()}
    if stats_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"wrote {stats.n} reviews to {out}: spoiler rate {stats.spoiler_rate:.1%}, "
            f"mean words {stats.mean_words:.1f} (median {stats.median_words}), "
            f"rating mean {stats.rating_mean:.2f}, non-Latin share {stats.non_latin_share:.1%}"
        )
