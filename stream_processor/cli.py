"""`spoiler-worker` (= `python -m stream_processor`): worker | check-bundle.

Exit codes (docs/stream_processor.md): 0 stopped cleanly (SIGTERM/SIGINT); 1 an
unexpected error, logged with its traceback; 2 wrong configuration (an invalid
setting or option) or a model bundle that cannot be loaded at start, one line on
stderr; 3 a batch could not be delivered, so the worker ended without
acknowledging it and the consumer group re-delivers it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

import typer

from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.logging_setup import configure_logging, set_level
from spoiler_common.settings import KafkaSettings, load_settings
from stream_processor.model_holder import ModelHolder
from stream_processor.settings import WorkerSettings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="The spoiler stream worker (Faust + ONNX).")
log = logging.getLogger(__name__)


def _refuse(message: object) -> NoReturn:
    """Exit 2: wrong input or configuration, said in one line."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def worker(
    bundle_path: Path | None = typer.Option(
        None, "--bundle-path", help="Override SPOILER_BUNDLE_PATH."),
    web_port: int | None = typer.Option(
        None, "--web-port", help="Override SPOILER_WORKER_WEB_PORT."),
) -> None:
    """Consume the reviews topic, publish predictions and dead letters, serve HTTP on 6066."""
    # Faust (and the app module that needs it) load here: check-bundle and --help do
    # without them.
    from faust import Worker

    from stream_processor.app import build_worker

    try:
        settings = load_settings(WorkerSettings, bundle_path=bundle_path, web_port=web_port)
        set_level(settings.log_level)
        stream_worker = build_worker(settings, load_settings(KafkaSettings))
        stream_worker.start_model()
    except SpoilerStreamError as exc:
        _refuse(exc)
    faust_worker = Worker(stream_worker.app, loglevel=settings.log_level, quiet=True,
                          redirect_stdouts=False)
    faust_worker.execute_from_commandline()


@app.command("check-bundle")
def check_bundle(
    bundle_path: Path | None = typer.Option(None, "--bundle-path", help="Bundle directory."),
) -> None:
    """Load a bundle the way the worker would and print what it is (exit 2 if it cannot)."""
    try:
        settings = load_settings(WorkerSettings, bundle_path=bundle_path)
        holder = ModelHolder(settings.bundle_path, variant=settings.variant,
                             threads=settings.threads)
        model = holder.load_initial()
    except SpoilerStreamError as exc:
        _refuse(exc)
    typer.echo(f"{model.name} {model.version} threshold={model.threshold} "
               f"max_length={model.max_length} path={holder.path}")


def main() -> None:
    """The console script: logging configured once, then the command."""
    configure_logging()
    app()


__all__ = ["app", "main"]
