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
    champion: Path | None = typer.Option(
        None, "--champion", help=f"Champion bundle for retrain.recipe recalibrate {SERVED}."),
    params: Path = PARAMS,
) -> None:
    """Fine-tune the classifier (early stopping on validation); with retrain.recipe
    recalibrate, take the champion's graphs and score the prepared splits with them."""
    p = _params(params)
    if p.retrain.recipe == "recalibrate":
        from training import recalibrate

        recalibrate.snapshot(_served(champion), prepared, out)
        return
    from training import train as step

    step.run(prepared, out, p.train)


@app.command()
@_friendly
def champion(
    champion: Path | None = typer.Option(None, "--champion", help=f"Champion bundle {SERVED}."),
    out: Path = typer.Option(Path("models/retrain/champion.json"), "--out"),
    params: Path = PARAMS,
) -> None:
    """Record which champion the recalibrate recipe starts from (the train stage's input)."""
    from training import recalibrate

    identity = recalibrate.champion_identity(_served(champion), _params(params).retrain.recipe)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")


@app.command()
@_friendly
def export(
    trained: Path = typer.Option(Path("models/train"), "--trained"),
    prepared: Path = typer.Option(Path("data/prepared"), "--prepared"),
    out: Path = typer.Option(Path("models/export"), "--out"),
    params: Path = PARAMS,
) -> None:
    """ONNX fp32 + int8 with the parity gate (fails the stage if the gate fails); a
    recalibrate train stage's champion graphs are taken as they are, with their parity."""
    from training import export as step
    from training import recalibrate

    if recalibrate.is_recalibrate(trained):
        recalibrate.export(trained, out)
        return
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
    alias: str | None = typer.Option(None, "--alias", help=(
        "Set this alias on the new version (e.g. challenger); default: mlflow.alias on the "
        "first version only.")),
    manifest: Path | None = typer.Option(None, "--manifest",
                                         help="collect's manifest.json (the data lineage)."),
    comparison: Path | None = typer.Option(None, "--comparison",
                                           help="compare's report (the parent and its metrics)."),
    install_challenger: bool = typer.Option(
        False, "--install-challenger",
        help="Install the bundle and point SPOILER_TRAINING_CHALLENGER_PATH at it."),
    params: Path = PARAMS,
) -> None:
    """Log params, metrics, plots and the bundle to MLflow; register a model version."""
    from training import registry

    info = registry.log_and_register(bundle, reports, trained, _params(params), params,
                                     alias=alias, snapshot=manifest, comparison=comparison)
    if install_challenger:
        from training import serving

        settings = _training_settings()
        installed = serving.install(bundle, settings.versions_dir)
        serving.point(settings.challenger_path, installed, settings.versions_dir)
        info["installed_to"] = str(settings.challenger_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=2) + "\n")
    typer.echo(json.dumps(info, indent=2))


def _training_settings(install_to: Path | None = None) -> Any:
    """TrainingSettings from the environment; `install_to` overrides the serving link."""
    from spoiler_common.settings import load_settings
    from training.settings import TrainingSettings

    if install_to is None:
        return load_settings(TrainingSettings)
    return load_settings(TrainingSettings, bundle_path=install_to,
                         versions_dir=install_to.parent / "versions")


@app.command()
@_friendly
def collect(
    out: Path | None = typer.Option(None, "--out",
                                    help="Snapshot directory (default: collect.out)."),
    params: Path = PARAMS,
) -> None:
    """Export the labelled reviews stored in PostgreSQL as a snapshot with its manifest."""
    from training import collect as step

    m = step.run(_params(params).collect, out)
    typer.echo(f"collected {m['rows']} labelled reviews ({m['class_counts']['spoiler']} "
               f"spoilers) produced {m['window']['first_produced_at']} .. "
               f"{m['window']['last_produced_at']} data_hash={m['data_hash'][:12]}")


@app.command()
@_friendly
def compare(
    challenger: Path = typer.Option(Path("models/retrain/bundle"), "--challenger"),
    champion: Path | None = typer.Option(None, "--champion",
                                         help="Default: SPOILER_BUNDLE_PATH."),
    prepared: Path = typer.Option(Path("data/retrain/prepared"), "--prepared"),
    split: str = typer.Option("test", "--split", help="The held-out split both are scored on."),
    out: Path = typer.Option(Path("reports/retrain/comparison.json"), "--out"),
    alpha: float = typer.Option(0.05, "--alpha", min=0.0001, max=0.5),
) -> None:
    """Score challenger and champion with the runtime on the same split; paired comparison."""
    from training import compare as step

    report = step.run(challenger, champion or _training_settings().bundle_path, prepared, out,
                      split=split, alpha=alpha)
    typer.echo(step.summary(report))


@app.command()
@_friendly
def retrain(
    params: Path = typer.Option(Path("retrain/params.yaml"), "--params",
                                help="Retrain parameters; its dvc.yaml is beside it."),
    force: bool = typer.Option(False, "--force", help="Re-run every stage (dvc repro -f)."),
) -> None:
    """Build a challenger from the labelled reviews in PostgreSQL (dvc repro retrain/dvc.yaml)."""
    from training import retrain as step
    from training.compare import summary

    report = step.run(params, _params(params), _training_settings(), force=force)
    typer.echo(summary(report))


@app.command()
@_friendly
def promote(
    version: str = typer.Argument(..., help=(
        "What to serve: an alias (challenger), a registered version number, 'latest', or "
        "a bundle directory.")),
    alias: str = typer.Option("champion", "--alias", help=(
        "Alias to move. Another alias than champion only moves that alias.")),
    install_to: Path | None = typer.Option(
        None, "--install-to", help="The serving link (default: SPOILER_BUNDLE_PATH; "
        "versions are installed beside it under versions/)."),
    no_install: bool = typer.Option(False, "--no-install", help="Only move the alias."),
    reason: str = typer.Option("", "--reason", help="Recorded with the promotion."),
    params: Path = PARAMS,
) -> None:
    """Make a version the champion: alias, atomic serving switch, recorded and annotated."""
    from training import registry

    p = _params(params).mlflow
    if no_install or alias != "champion":
        info = registry.promote(p.registered_model, version, alias, None)
    else:
        from training import promotion

        info = promotion.promote(version, registered_model=p.registered_model,
                                 settings=_training_settings(install_to), reason=reason)
    typer.echo(json.dumps(info, indent=2))


@app.command()
@_friendly
def rollback(
    install_to: Path | None = typer.Option(None, "--install-to",
                                           help="The serving link (as for promote)."),
    reason: str = typer.Option("", "--reason", help="Recorded with the rollback."),
    params: Path = PARAMS,
) -> None:
    """Serve the previous champion again (the one the last promotion replaced)."""
    from training import promotion

    info = promotion.rollback(registered_model=_params(params).mlflow.registered_model,
                              settings=_training_settings(install_to), reason=reason)
    typer.echo(json.dumps(info, indent=2))


@app.command()
@_friendly
def autopilot(
    once: bool = typer.Option(False, "--once", help="One check, then exit."),
    params: Path = typer.Option(Path("retrain/params.yaml"), "--params"),
) -> None:
    """Promote the challenger / roll back the champion on live evidence (SPOILER_AUTOPILOT_*)."""
    from spoiler_common.settings import load_settings
    from training import autopilot as step
    from training.settings import AutopilotSettings

    step.run(load_settings(AutopilotSettings), _training_settings(),
             _params(params).mlflow.registered_model, once=once)


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
