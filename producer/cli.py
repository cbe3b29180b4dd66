"""`spoiler-producer` (= `python -m producer`): replay | stream | synth, thin over the modules
beside it.

Exit codes (docs/producer.md): 0 done, or stopped cleanly by SIGTERM/SIGINT; 1 messages
were not delivered (each failure logged) or an unexpected error, logged with its
traceback; 2 wrong input or configuration, or Kafka unusable at start (a missing
file, an invalid setting or option, `--strict` at a bad record, an unreachable broker
or missing topics), one line on stderr.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import typer

from producer.progress import ProgressReporter
from producer.replay import ReplayOptions
from producer.service import build_producer
from producer.settings import ProducerSettings
from producer.sources import Pass, file_passes, synth_passes
from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.logging_setup import configure_logging, set_level
from spoiler_common.settings import load_settings
from synth import SCENARIOS, generate
from synth.writer import write_jsonl

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Replay IMDB-style reviews onto Kafka, generate synthetic ones, simulate drift.",
    no_args_is_help=True,
    add_completion=False,
)

SCENARIO_HELP = f"Drift scenario, one of: {', '.join(SCENARIOS)} (see docs/producer.md)."


def _refuse(message: object) -> NoReturn:
    """Exit 2: wrong input or configuration, said in one line."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _level(log_level: str) -> None:
    try:
        set_level(log_level)
    except SpoilerStreamError as exc:
        _refuse(exc)


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
    _level(log_level)
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


def _install_signal_handlers(stop: threading.Event) -> None:
    """First SIGINT/SIGTERM: stop reading, flush, summarise. A second SIGINT: exit now."""

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("Stopping on %s: flushing what was sent", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _settings(metrics_port: int | None) -> ProducerSettings:
    try:
        return load_settings(ProducerSettings, metrics_port=metrics_port)
    except SpoilerStreamError as exc:
        _refuse(exc)


def _run(passes: Iterable[Pass], options: ReplayOptions, settings: ProducerSettings,
         as_json: bool) -> None:
    try:
        producer = build_producer(settings)
    except SpoilerStreamError as exc:
        _refuse(exc)
    stop = threading.Event()
    _install_signal_handlers(stop)
    try:
        summary = producer.run(passes, options, stop)
    except (SpoilerStreamError, ValueError) as exc:
        _refuse(exc)
    finally:
        producer.close()
    typer.echo(json.dumps(summary.as_dict()) if as_json else summary.render())
    if summary.stopped_by == "strict":
        bad = summary.bad_records[-1]
        _refuse(f"--strict stopped the replay at line {bad.line} ({bad.reason}: {bad.detail}); "
                "fix the record, or run without --strict to skip bad records")
    if not summary.ok:
        raise typer.Exit(1)


def _count_lines(path: Path) -> int | None:
    """Records in an uncompressed JSON-lines file (fast byte count), for the ETA."""
    if path.suffix == ".gz" or path.stat().st_size > 4 << 30:
        return None
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


RATE = typer.Option(None, "--rate", min=0.001, help="Messages per second (token bucket).")
LABEL_DELAY = typer.Option(None, "--label-delay", min=0.0,
                           help="Seconds between a review and its label (default "
                           "SPOILER_PRODUCER_LABEL_DELAY_S, 30).")
LABEL_FRACTION = typer.Option(None, "--label-fraction", min=0.0, max=1.0,
                              help="Share of labels sent; the rest are withheld (default 1).")
INCLUDE_LABEL = typer.Option(False, "--include-label",
                             help="Also keep is_spoiler in the review message.")
METRICS_PORT = typer.Option(None, "--metrics-port", min=0, max=65535,
                            help="Prometheus /metrics port (default 9101; 0 disables).")
LIMIT = typer.Option(None, "--limit", min=0, help="Stop after sending this many reviews.")
AS_JSON = typer.Option(False, "--json", help="Print the summary as JSON.")
LOG_LEVEL = typer.Option("INFO", "--log-level", help="Logging level.")


@app.command("replay")
def replay_cmd(
    path: Path = typer.Argument(..., help="IMDB_reviews.json(.gz): JSON lines or a JSON array."),
    rate: float | None = RATE,
    speedup: float | None = typer.Option(
        None, "--speedup", min=0.001,
        help="Follow review_date order compressed by X (86400: a day per second)."),
    limit: int | None = LIMIT,
    loop: bool = typer.Option(False, "--loop", help="Start over at the end (ids get -L<n>)."),
    shuffle: int | None = typer.Option(
        None, "--shuffle", help="Shuffle with this seed (bounded buffer, see docs)."),
    start_at: int = typer.Option(0, "--start-at", min=0, help="Skip this many records first."),
    label_delay: float | None = LABEL_DELAY,
    label_fraction: float | None = LABEL_FRACTION,
    include_label: bool = INCLUDE_LABEL,
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad record."),
    scenario: str = typer.Option(
        "none", "--scenario", help="none, label_noise or spoiler_rate (by subsampling)."),
    drift_at: int | None = typer.Option(None, "--drift-at", min=0,
                                        help="Record index where the scenario starts."),
    metrics_port: int | None = METRICS_PORT,
    as_json: bool = AS_JSON,
    log_level: str = LOG_LEVEL,
) -> None:
    """Replay a dataset file onto the reviews topic, labels later onto the labels topic."""
    _level(log_level)
    if not path.is_file():
        _refuse(f"input file not found: {path}")
    settings = _settings(metrics_port)
    passes = file_passes(path, start_at=start_at, loop=loop, shuffle_seed=shuffle,
                         shuffle_buffer=settings.shuffle_buffer)
    total = None if (loop or limit) else _count_lines(path)
    options = ReplayOptions(
        rate=rate, speedup=speedup, limit=limit, label_delay_s=label_delay,
        label_fraction=label_fraction, include_label=include_label, strict=strict,
        scenario=scenario, drift_at=drift_at, total=total, label_source="dataset",
    )
    _run(passes, options, settings, as_json)


@app.command()
def stream(
    n: int = typer.Option(..., "--n", min=0, help="Number of reviews to generate and send."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed."),
    scenario: str = typer.Option("none", "--scenario", help=SCENARIO_HELP,
                                 callback=_check_scenario),
    drift_at: int | None = typer.Option(None, "--drift-at", min=0,
                                        help="Record index where the scenario starts."),
    start_index: int = typer.Option(0, "--start-index", min=0, help="First record index."),
    rate: float | None = RATE,
    limit: int | None = LIMIT,
    label_delay: float | None = LABEL_DELAY,
    label_fraction: float | None = LABEL_FRACTION,
    include_label: bool = INCLUDE_LABEL,
    metrics_port: int | None = METRICS_PORT,
    as_json: bool = AS_JSON,
    log_level: str = LOG_LEVEL,
) -> None:
    """Generate synthetic reviews and publish them directly (what the demo runs)."""
    _level(log_level)
    options = ReplayOptions(
        rate=rate, limit=limit, label_delay_s=label_delay, label_fraction=label_fraction,
        include_label=include_label, total=n, label_source="synthetic",
    )
    _run(synth_passes(n, seed, scenario, drift_at, start_index), options,
         _settings(metrics_port), as_json)


def main() -> None:
    """The console script: logging configured once, then the command."""
    configure_logging()
    app()


__all__ = ["app", "main"]
