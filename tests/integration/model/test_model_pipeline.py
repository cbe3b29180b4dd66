"""The whole `dvc repro` on params.test.yaml in a temporary copy, MLflow registry, promote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spoiler_common.model_runtime import load_bundle
from spoiler_common.settings import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _workspace(tmp: Path) -> Path:
    """dvc.yaml + test params + the stages' dependency files; code runs from the repo."""
    work = tmp / "pipeline"
    work.mkdir()
    shutil.copy(REPO_ROOT / "dvc.yaml", work / "dvc.yaml")
    shutil.copy(REPO_ROOT / "params.test.yaml", work / "params.yaml")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "training", work / "training", ignore=ignore)
    shutil.copytree(REPO_ROOT / "synth", work / "synth", ignore=ignore)
    shutil.copytree(REPO_ROOT / "spoiler_common", work / "spoiler_common", ignore=ignore)
    return work


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    return env


def _run(args: list[str], work: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=work, env=_env(work), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def test_model_dvc_pipeline_end_to_end(tmp_path: Path) -> None:
    work = _workspace(tmp_path)
    dvc = str(Path(sys.executable).parent / "dvc")
    _run([dvc, "init", "--no-scm", "-q"], work)
    _run([dvc, "repro"], work)

    bundle = work / "models" / "bundle"
    for name in ("model.onnx", "model.fp32.onnx", "tokenizer.json", "bundle.json"):
        assert (bundle / name).is_file()
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["parity"]["passed"] is True
    assert meta["parity"]["variants"][meta["default_variant"]]["passed"] is True

    metrics = json.loads((work / "reports" / "evaluate" / "metrics.json").read_text())
    for key in ("roc_auc", "pr_auc", "f1_spoiler", "macro_f1", "accuracy", "brier", "ece",
                "confusion_matrix_tp", "confusion_matrix_fp", "spoiler_rate"):
        assert key in metrics["test"]
    assert metrics["test"]["roc_auc"] > 0.6
    # Baselines of the same run, side by side with the model, and calibration figures.
    assert set(metrics["baselines"]) == {"tfidf_logreg", "text_length", "majority"}
    assert metrics["calibration"]["test_brier_after"] > 0
    baseline = json.loads((work / "reports" / "baseline" / "metrics.json").read_text())
    assert baseline["tfidf_logreg"]["test"]["roc_auc"] > 0.6
    assert baseline["tfidf_logreg"]["test"]["roc_auc"] == metrics["baselines"]["tfidf_logreg"][
        "roc_auc"] == meta["baselines"]["tfidf_logreg"]["roc_auc"]
    for plot in ("roc.json", "pr.json", "confusion.csv", "scores.json", "evaluation.png",
                 "calibration.json", "calibration.png"):
        assert (work / "reports" / "evaluate" / "plots" / plot).is_file()
    shown = _run([dvc, "metrics", "show", "--json"], work).stdout
    assert "roc_auc" in shown

    registry = json.loads((work / "reports" / "registry.json").read_text())
    assert registry["model_version"] == "1" and registry["alias"] == "champion"
    code = ("import mlflow; c = mlflow.MlflowClient(); "
            "v = c.get_model_version_by_alias('spoiler-detector-test', 'champion'); "
            "print(v.version, v.tags['bundle_version'])")
    out = _run([sys.executable, "-c", code], work).stdout.split()
    assert out == ["1", meta["version"]]

    # promote installs the champion's bundle where the worker reads it.
    serving = work / "models" / "serving"
    _run([sys.executable, "-m", "training", "promote", "latest", "--install-to", str(serving)],
         work)
    assert load_bundle(serving).version == meta["version"]

    # Nothing changed: a second repro runs no stage.
    again = _run([dvc, "repro"], work).stdout
    assert "Running stage" not in again
