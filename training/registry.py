"""MLflow: log a pipeline run (params, metrics, plots, bundle), register it, promote versions.

The tracking URI is MLflow's own: `MLFLOW_TRACKING_URI` when set, else
`sqlite:///mlflow.db` in the working directory (artifacts under ./mlruns).
A registered version's source is the run's `bundle` artifact directory; the
alias `champion` marks the version to serve, and `promote` moves it and
installs that bundle into models/serving.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from spoiler_common.bundle import read_manifest
from spoiler_common.exceptions import ModelBundleError
from training.exceptions import RegistryError
from training.metrics import flat
from training.params import Params

log = logging.getLogger(__name__)


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def lineage(snapshot: Path | None, comparison: Path | None) -> tuple[dict[str, str],
                                                                    dict[str, float]]:
    """Tags and metrics a retrained version carries: its data snapshot and its parent."""
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    snap = _read(snapshot) if snapshot is not None else {}
    if snap:
        window = snap.get("window", {})
        tags.update({"snapshot_hash": snap.get("data_hash", ""),
                     "snapshot_rows": str(snap.get("rows", "")),
                     "data_window_first": str(window.get("first_produced_at", "")),
                     "data_window_last": str(window.get("last_produced_at", "")),
                     "data_window_since": str(window.get("since") or ""),
                     "data_window_until": str(window.get("until") or "")})
    report = _read(comparison) if comparison is not None else {}
    if report.get("champion"):
        tags["parent_bundle_version"] = str(report["champion"]["version"])
    cmp = report.get("comparison") or {}
    if cmp:
        tags["comparison_verdict"] = str(cmp.get("verdict"))
        for role in ("champion", "challenger"):
            for metric, value in (cmp.get(role) or {}).items():
                if value is not None:
                    metrics[f"compare_{role}_{metric}"] = float(value)
        for metric in ("accuracy", "f1", "roc_auc"):
            for key, value in (cmp.get(f"{metric}_diff") or {}).items():
                if value is not None:
                    metrics[f"compare_{metric}_diff_{key}"] = float(value)
        for key in ("agreement", "mcnemar_p"):
            if cmp.get(key) is not None:
                metrics[f"compare_{key}"] = float(cmp[key])
    return tags, metrics


def log_and_register(bundle: Path, reports: Path, trained: Path, params: Params,
                     params_file: Path | None = None, *, alias: str | None = None,
                     snapshot: Path | None = None,
                     comparison: Path | None = None) -> dict[str, Any]:
    """One MLflow run for the pipeline's outputs; registers the bundle as a new version.

    `alias` (e.g. `challenger`) is set on the new version whatever came before;
    without it, params.mlflow.alias goes to the first version only. `snapshot`
    (collect's manifest.json) and `comparison` (compare's) add the retrain's lineage."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        manifest = read_manifest(bundle)
    except ModelBundleError as exc:
        raise RegistryError(f"{exc} (run the package stage first)") from exc
    cfg = params.mlflow
    extra_tags, extra_metrics = lineage(snapshot, comparison)
    trained_info = _read(trained / "train.json")
    # How the challenger was built: a fine-tuned model, or the champion's graphs recalibrated
    # (whose parent is, by construction, the bundle the train stage copied).
    extra_tags["recipe"] = str(trained_info.get("recipe", "finetune"))
    if trained_info.get("parent_version"):
        extra_tags["parent_bundle_version"] = str(trained_info["parent_version"])
    try:
        parent = _alias_version(cfg.registered_model, "champion")
        if parent is not None:
            extra_tags["parent_version"] = parent
        mlflow.set_experiment(cfg.experiment)
        with mlflow.start_run(run_name=f"{manifest.name}-{manifest.version}") as run:
            mlflow.log_params(flat_params(params))
            mlflow.set_tags({"bundle_name": manifest.name, "bundle_version": manifest.version,
                             "data_hash": manifest.data_hash or "",
                             "base_model": manifest.base_model, **extra_tags})
            mlflow.log_metrics(extra_metrics)
            for extra in (snapshot, comparison):
                if extra is not None and extra.is_file():
                    mlflow.log_artifact(str(extra), artifact_path="lineage")
            evaluation = _read(reports / "evaluate" / "metrics.json")
            mlflow.log_metrics(flat(evaluation))
            mlflow.log_metrics(flat(_read(reports / "baseline" / "metrics.json"), "baseline_"))
            if manifest.parity is not None:
                mlflow.log_metrics(flat(manifest.parity.model_dump(), "parity_"))
            for epoch in trained_info.get("history", []):
                mlflow.log_metrics({"train_loss": epoch["train_loss"],
                                    "val_roc_auc_epoch": epoch["val_roc_auc"]},
                                   step=int(epoch["epoch"]))
            plots = reports / "evaluate" / "plots"
            if plots.is_dir():
                mlflow.log_artifacts(str(plots), artifact_path="plots")
            if params_file is not None and params_file.is_file():
                mlflow.log_artifact(str(params_file), artifact_path="params")
            mlflow.log_artifacts(str(bundle), artifact_path="bundle")
            source = f"{run.info.artifact_uri}/bundle"
        client = _client()
        if client.search_registered_models(filter_string=f"name = '{cfg.registered_model}'"):
            first = False
        else:
            client.create_registered_model(cfg.registered_model,
                                           description="Spoiler classifier bundles (ONNX).")
            first = True
        version = client.create_model_version(
            cfg.registered_model, source=source, run_id=run.info.run_id,
            tags={"bundle_version": manifest.version, "roc_auc": str(
                manifest.metrics.roc_auc if manifest.metrics else ""), **extra_tags},
            description=f"bundle {manifest.name} {manifest.version}",
        )
        chosen_alias = alias or (cfg.alias if first and cfg.alias_first_version else None)
        if chosen_alias:
            client.set_registered_model_alias(cfg.registered_model, chosen_alias,
                                              version.version)
    except MlflowException as exc:
        raise RegistryError(f"MLflow at {mlflow.get_tracking_uri()} failed: {exc}. Check "
                            "MLFLOW_TRACKING_URI (unset = sqlite:///mlflow.db here)") from exc
    info = {"tracking_uri": mlflow.get_tracking_uri(), "run_id": run.info.run_id,
            "registered_model": cfg.registered_model, "model_version": str(version.version),
            "bundle_version": manifest.version, "alias": chosen_alias, "lineage": extra_tags}
    log.info("Registered %s", info)
    return info


def _alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException:  # no such model or alias yet
        return None


def flat_params(params: Params) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, values in params.model_dump().items()
            for key, value in values.items()}


def promote(name: str, version: str, alias: str = "champion",
            install_to: Path | None = None) -> dict[str, Any]:
    """Point `alias` at `version` ('latest' = highest); optionally install that bundle."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
        if not versions:
            raise RegistryError(f"no registered model {name!r} at {mlflow.get_tracking_uri()}: "
                                "run the pipeline (`dvc repro`) first, or set "
                                "MLFLOW_TRACKING_URI to the tracking server that has it")
        known = sorted(int(v.version) for v in versions)
        chosen = str(known[-1]) if version == "latest" else version
        if not chosen.isdigit() or int(chosen) not in known:
            raise RegistryError(f"model {name!r} has no version {version!r}; known versions: "
                                f"{known}")
        client.set_registered_model_alias(name, alias, chosen)
        installed = None
        if install_to is not None:
            from training.package import install

            with tempfile.TemporaryDirectory(prefix="promote-") as tmp:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{name}/{chosen}", dst_path=tmp)
                install(Path(local), install_to)
            installed = str(install_to)
    except MlflowException as exc:
        raise RegistryError(f"MLflow at {mlflow.get_tracking_uri()} failed: {exc}") from exc
    log.info("Promoted model=%s version=%s alias=%s installed=%s", name, chosen, alias,
             installed)
    return {"registered_model": name, "model_version": chosen, "alias": alias,
            "installed_to": installed,
            "next": "dvc commit -f models.dvc && git add models.dvc && dvc push"
            if installed else None}
