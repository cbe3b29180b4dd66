"""`python -m stream_processor worker`: run one worker (start N for N-way scale-out)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.logging_setup import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="The spoiler stream worker (Faust + ONNX).")
log = logging.getLogger("stream_processor")


@app.command()
def worker(
    bundle_path: Path | None = typer.Option(
        None, "--bundle-path", help="Override SPOILER_WORKER_BUNDLE_PATH."),
    web_port: int | None = typer.Option(
        None, "--web-port", help="Override SPOILER_WORKER_WEB_PORT."),
) -> None:
    """Consume the reviews topic, publish predictions and dead letters, serve HTTP on 6066."""
    from faust import Worker

    from stream_processor.app import build_worker
    from stream_processor.settings import WorkerSettings

    overrides = {k: v for k, v in {"bundle_path": bundle_path, "web_port": web_port}.items()
                 if v is not None}
    settings = WorkerSettings().model_copy(update=overrides)
    configure_logging(settings.log_level)
    try:
        stream_worker = build_worker(settings)
        stream_worker.start_model()
    except SpoilerStreamError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    faust_worker = Worker(stream_worker.app, loglevel=settings.log_level, quiet=True,
                          redirect_stdouts=False)
    faust_worker.execute_from_commandline()


@app.command("check-bundle")
def check_bundle(
    bundle_path: Path | None = typer.Option(None, "--bundle-path", help="Bundle directory."),
) -> None:
    """Load a bundle the way the worker would and print what it is (exit 2 if it cannot)."""
    from stream_processor.model_holder import ModelHolder
    from stream_processor.settings import WorkerSettings

    settings = WorkerSettings()
    holder = ModelHolder(bundle_path or settings.bundle_path, variant=settings.variant,
                         threads=settings.threads)
    try:
        model = holder.load_initial()
    except SpoilerStreamError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{model.name} {model.version} threshold={model.threshold} "
               f"max_length={model.max_length} path={holder.path}")


def main() -> None:
    app(prog_name="python -m stream_processor")


if __name__ == "__main__":
    main()
