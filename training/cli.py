"""`spoiler-train` (= `python -m training <command>`): one command per pipeline step (what
dvc.yaml runs).

Thin: parse options, read params, call the step's `run`. Exit codes (docs/model.md):
0 done; 1 an unexpected error, logged with its traceback; 2 wrong input or
configuration (a missing or invalid file, parameter or bundle, a base model that
cannot be loaded, a gate the model fails), one line on stderr that says what to fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer

from spoiler_common.exceptions import SpoilerStreamError
from spoiler_common.logging_setup import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Model pipeline: prepare, train, export, evaluate, package, register.")
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

PARAMS = typer.Option(Path("params.yaml"), "--params", help="Parameters file (YAML).")
SERVED = "(default: SPOILER_BUNDLE_PATH, models/serving)"


def _served(path: Path | None) -> Path:
    """The option's bundle directory, else the served one (the shared setting)."""
    from spoiler_common.settings import BundleSettings, load_settings

    return load_settings(BundleSettings, bundle_path=path).bundle_path


def _friendly(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpoilerStreamError as exc:
            typer.secho(f"error: {exc}", err=True, fg="red")
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def _params(path: Path) -> Any:
    from training.params import load_params

    return load_params(path)


@app.command()
@_friendly
def generate(params: Path = PARAMS) -> None:
    """Write synthetic reviews (synth) to generate.out."""
    from training.data import write_jsonl
    from training.tiny import generated_reviews

    p = _params(params).generate
    write_jsonl(Path(p.out), generated_reviews(p.n, p.seed, p.scenario))
    typer.echo(f"wrote {p.n} reviews to {p.out}")


@app.command()
@_friendly
def prepare(
    source: Path | None = typer.Option(None, "--source",
                                       help="Reviews to read (default: prepare.source)."),
    out: Path = typer.Option(Path("data/prepared"), "--out", help="Output directory."),
    params: Path = PARAMS,
) -> None:
    """Clean, deduplicate and split into train/validation/test."""
    from training import prepare as step

    p = _params(params).prepare
    step.run(source or Path(p.source), out, p)


@app.command()
@_friendly
def train(
    prepared: Path = typer.Option(Path("data/prepared"), "--prepared"),
    out: Path = typer.Option(Path("models/train"), "--out"),
    params: Path = PARAMS,
) -> None:
    """Fine-tune the classifier (early stopping on validation)."""
    from training import train as step

    step.run(prepared, out, _params(params).train)


@app.command()
@_friendly
def export(
    trained: Path = typer.Option(Path("models/train"), "--trained"),
    prepared: Path = typer.Option(Path("data/prepared"), "--prepared"),
    out: Path = typer.Option(Path("models/export"), "--out"),
    params: Path = PARAMS,
) -> None:
    """ONNX fp32 + int8 with the parity gate (fails the stage if the gate fails)."""
    from training import export as step

    p = _params(params)
    step.run(trained, prepared, out, p.export, seed=p.prepare.seed)


@app.command()
@_friendly
def evaluate(
    exported: Path = typer.Option(Path("models/export"), "--exported"),
    prepared: Path = typer.Option(Path("data/prepared"), "--prepared"),
    out: Path = typer.Option(Path("reports/evaluate"), "--out"),
    baselines: Path = typer.Option(Path("reports/baseline/baselines.json"), "--baselines",
                                   help="The baseline stage's output, gated against."),
    params: Path = PARAMS,
) -> None:
    """Calibrate and tune on validation; test metrics beside the baselines; reference; plots."""
    from training import evaluate as step

    p = _params(params)
    base = json.loads(baselines.read_text()) if baselines.is_file() else None
    step.run(exported, prepared, out, baselines=base, max_auc_gap=p.evaluate.max_auc_gap,
             seed=p.prepare.seed)


@app.command()
@_friendly
def baseline(
    prepared: Path = typer.Option(Path("data/prepared"), "--prepared"),
    out: Path = typer.Option(Path("reports/baseline"), "--out"),
    params: Path = PARAMS,
) -> None:
    """TF-IDF + LR, text length and majority baselines on the same split."""
    from training import baseline as step

    step.run(prepared, out, _params(params).prepare.seed)


@app.command()
@_friendly
def package(
    exported: Path = typer.Option(Path("models/export"), "--exported"),
    evaluation: Path = typer.Option(Path("reports/evaluate/evaluation.json"), "--evaluation"),
    prepared: Path = typer.Option(Path("data/prepared"), "--prepared"),
    out: Path = typer.Option(Path("models/bundle"), "--out"),
    params: Path = PARAMS,
) -> None:
    """Assemble the bundle directory (bundle.json with checksums and reference)."""
    from training import package as step

    p = _params(params).package
    step.run(exported, evaluation, prepared / "prepare.json", out, name=p.name,
             version=p.version)


@app.command()
@_friendly
def register(
    bundle: Path = typer.Option(Path("models/bundle"), "--bundle"),
    reports: Path = typer.Option(Path("reports"), "--reports"),
    trained: Path = typer.Option(Path("models/train"), "--trained"),
    out: Path = typer.Option(Path("reports/registry.json"), "--out"),
    params: Path = PARAMS,
) -> None:
    """Log params, metrics, plots and the bundle to MLflow; register a model version."""
    from training import registry

    info = registry.log_and_register(bundle, reports, trained, _params(params), params)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=2) + "\n")
    typer.echo(json.dumps(info, indent=2))


@app.command()
@_friendly
def promote(
    version: str = typer.Argument(..., help="Registered model version number, or 'latest'."),
    alias: str = typer.Option("champion", "--alias", help="Alias to point at the version."),
    install_to: Path | None = typer.Option(
        None, "--install-to",
        help=f"Also copy that version's bundle here {SERVED}; models.dvc tracks it."),
    no_install: bool = typer.Option(False, "--no-install", help="Only move the alias."),
    params: Path = PARAMS,
) -> None:
    """Point the alias (champion) at a registered version and install its bundle."""
    from training import registry

    p = _params(params).mlflow
    info = registry.promote(p.registered_model, version, alias,
                            None if no_install else _served(install_to))
    typer.echo(json.dumps(info, indent=2))


@app.command()
@_friendly
def predict(
    texts: list[str] = typer.Argument(..., help="Review text(s) to score."),
    bundle: Path | None = typer.Option(None, "--bundle", help=f"Bundle directory {SERVED}."),
    variant: str = typer.Option("auto", "--variant",
                                help="auto (the bundle's default_variant), int8 or fp32."),
    threads: int = typer.Option(1, "--threads"),
) -> None:
    """Score texts with a bundle (onnxruntime; no torch)."""
    from training.predict import predict_texts

    for line in predict_texts(texts, _served(bundle), variant, threads):  # type: ignore[arg-type]
        typer.echo(line)


@app.command("ensure-bundle")
@_friendly
def ensure_bundle(
    out_dir: Path | None = typer.Option(None, "--out", help=f"Bundle directory {SERVED}."),
    params: Path = typer.Option(Path("params.demo.yaml"), "--params"),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a bundle is there."),
) -> None:
    """Build the default (demo) bundle into --out unless one is already there."""
    import tempfile

    from spoiler_common.bundle import BUNDLE_JSON, read_manifest
    from spoiler_common.exceptions import ModelBundleError
    from training.pipeline import build_bundle
    from training.tiny import generated_reviews

    out = _served(out_dir)
    if (out / BUNDLE_JSON).exists() and not force:
        try:
            read_manifest(out)
            typer.echo(f"bundle present at {out}")
            return
        except ModelBundleError as exc:  # e.g. an older format: this release cannot serve it
            typer.echo(f"rebuilding {out}: {exc}")
    p = _params(params)
    rows = generated_reviews(p.generate.n, p.generate.seed, p.generate.scenario)
    with tempfile.TemporaryDirectory(prefix="ensure-bundle-") as work:
        # The PyTorch checkpoint stays beside the bundle (<out>.checkpoint) so the
        # benchmarks' naive baseline runs on the served model.
        result = build_bundle(rows, Path(work), out, p, keep_torch=True)
    manifest = result["manifest"]
    typer.echo(f"built {out} version={manifest.version} in {result['timings']['total']:.0f}s "
               f"test_roc_auc={manifest.metrics.roc_auc:.3f}")


@app.command()
@_friendly
def crossval(
    file: Path = typer.Argument(..., help="Labelled reviews (JSON lines, dataset layout)."),
    folds: int = typer.Option(5, "--folds", min=2),
    base_model: str = typer.Option("offline:minilm", "--base-model"),
    max_length: int = typer.Option(256, "--max-length"),
    epochs: float = typer.Option(3, "--epochs"),
    seed: int = typer.Option(42, "--seed"),
    learning_rate: float = typer.Option(5e-5, "--learning-rate"),
    threads: int = typer.Option(0, "--threads", help="torch threads (0 = default)."),
    out: Path | None = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Stratified k-fold: transformer vs TF-IDF+LR, ROC-AUC/F1 per fold and mean ± sd."""
    from training import crossval as step

    result = step.run(file, folds=folds, base_model_spec=base_model, max_length=max_length,
                      epochs=epochs, seed=seed, threads=threads,
                      learning_rate=learning_rate)
    typer.echo(step.table(result))
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    """The console script: logging configured once, then the command."""
    configure_logging()
    # Libraries' chatter (optimum export warnings, HF hub) is not ours to show at INFO.
    for noisy in ("optimum", "transformers", "onnxruntime", "matplotlib", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app()


__all__ = ["app", "main"]
