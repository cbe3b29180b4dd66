"""The recalibrate retrain recipe's logic without services: refit, stored scores, identity."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from spoiler_common.bundle import write_manifest
from spoiler_common.settings import REPO_ROOT
from training import compare, recalibrate
from training.exceptions import TrainingError
from training.package import new_manifest
from training.params import load_params
from training.train import texts_digest

pytestmark = pytest.mark.unit


def drifted_scores(n: int, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels (25% spoilers) and raw scores that rank well, shifted up by `shift` logits."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.25).astype(int)
    logits = 2.0 * (labels - 0.5) * 1.5 + rng.normal(0, 1.2, n) + shift
    return labels, 1 / (1 + np.exp(-logits))


def accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    return float(np.mean((scores >= threshold) == labels.astype(bool)))


def test_refit_on_recent_train_split_restores_accuracy_of_shifted_scores() -> None:
    train_y, train_raw = drifted_scores(1200, 0, shift=2.0)
    test_y, test_raw = drifted_scores(600, 1, shift=2.0)
    stale = accuracy(test_y, test_raw, 0.5)  # the champion's threshold before the drift
    calibration, report, threshold = recalibrate.refit(train_y, train_raw, seed=0)
    refit = accuracy(test_y, calibration.apply(test_raw), threshold)
    assert refit > stale + 0.05
    assert report["fitted_on"] == "train" and report["n"] == 1200
    assert report["selected_by"] == "train_brier" and report["method"] != "identity"
    # Calibrated: the mean probability is near the spoiler rate, not the shifted one.
    assert abs(float(np.mean(calibration.apply(test_raw))) - test_y.mean()) < 0.05
    assert float(np.mean(test_raw)) - test_y.mean() > 0.2


def test_refit_keeps_the_ranking() -> None:
    from sklearn.metrics import roc_auc_score

    y, raw = drifted_scores(800, 2, shift=1.0)
    calibration, _, _ = recalibrate.refit(y, raw, seed=0)
    assert roc_auc_score(y, calibration.apply(raw)) == pytest.approx(roc_auc_score(y, raw),
                                                                     abs=0.01)


def test_stored_scores_refuse_other_texts() -> None:
    texts = ["a review", "another review"]
    stored = {"splits": {"test": {"texts_sha256": texts_digest(texts), "scores": [0.2, 0.9],
                                  "input_tokens": [3, 4], "unknown_tokens": [0, 1]}}}
    pred = recalibrate.split_scores(stored, "test", texts)
    assert pred.probabilities.tolist() == [0.2, 0.9] and pred.unknown_tokens == [0, 1]
    with pytest.raises(TrainingError, match="re-run the train stage"):
        recalibrate.split_scores(stored, "test", [*texts, "a third"])
    with pytest.raises(TrainingError, match="validation split"):
        recalibrate.split_scores(stored, "validation", texts)


def test_champion_identity_follows_the_champion_only_for_recalibrate(tmp_path: Path) -> None:
    files = {"model.onnx": "a" * 64, "model.fp32.onnx": "b" * 64, "tokenizer.json": "c" * 64}
    write_manifest(tmp_path, new_manifest(name="m", version="v1", base_model="tiny",
                                          max_length=64, truncation="head", threshold=0.5,
                                          files=files))
    assert recalibrate.champion_identity(tmp_path, "finetune") == {"recipe": "finetune"}
    identity = recalibrate.champion_identity(tmp_path, "recalibrate")
    assert identity == {"recipe": "recalibrate", "version": "v1", "files": files,
                        "default_variant": "int8"}


def test_same_graph_needs_identical_served_files_and_tokenization() -> None:
    files = {"model.onnx": "a" * 64, "model.fp32.onnx": "b" * 64, "tokenizer.json": "c" * 64}

    def bundle(**changes: object) -> SimpleNamespace:
        base = {"variant": "int8", "max_length": 128, "truncation": "head_tail",
                "files": dict(files)}
        return SimpleNamespace(**{**base, **changes})

    assert compare.same_graph(bundle(), bundle())
    assert not compare.same_graph(bundle(), bundle(variant="fp32"))
    assert not compare.same_graph(bundle(), bundle(max_length=64))
    assert not compare.same_graph(bundle(), bundle(files={**files, "tokenizer.json": "d" * 64}))


def test_recipe_parameter() -> None:
    assert load_params(REPO_ROOT / "params.yaml").retrain.recipe == "finetune"
    assert load_params(REPO_ROOT / "retrain" / "params.yaml").retrain.recipe == "recalibrate"
    with pytest.raises(TrainingError, match="recipe"):
        load_params(REPO_ROOT / "retrain" / "params.yaml", retrain={"recipe": "magic"})
