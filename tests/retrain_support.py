"""The retrain pipeline in a temporary workspace (e2e and integration tests share it)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from spoiler_common.settings import REPO_ROOT


def tiny_retrain_params(recipe: str = "finetune") -> dict[str, Any]:
    """retrain/params.yaml with the tiny model (as tests/conftest.py's bundle)."""
    params = yaml.safe_load((REPO_ROOT / "retrain" / "params.yaml").read_text())
    params["retrain"]["recipe"] = recipe
    params["collect"].update({"max_rows": 0, "min_labels": 100, "min_per_class": 10})
    params["train"].update({"base_model": "tiny:distilbert", "max_length": 64, "epochs": 2,
                            "batch_size": 8, "learning_rate": 3e-3, "frozen_layers": 0,
                            "threads": 2})
    params["export"]["min_label_agreement"] = 0.9  # tiny random-init model: see tiny.py
    params["evaluate"]["max_auc_gap"] = None
    params["mlflow"]["registered_model"] = "spoiler-detector-retrain-test"
    return params


def workspace(tmp: Path, champion: Path, recipe: str = "finetune") -> Path:
    """retrain/, training/ and spoiler_common/ copied, the champion at models/serving."""
    work = tmp / "pipeline"
    (work / "retrain").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "retrain" / "dvc.yaml", work / "retrain" / "dvc.yaml")
    (work / "retrain" / "params.yaml").write_text(yaml.safe_dump(tiny_retrain_params(recipe)))
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "training", work / "training", ignore=ignore)
    shutil.copytree(REPO_ROOT / "spoiler_common", work / "spoiler_common", ignore=ignore)
    # The champion as older releases installed it: a plain directory.
    shutil.copytree(champion, work / "models" / "serving")
    return work
