"""The `recalibrate` retrain recipe: the champion's own graphs, re-fitted to recent labels.

When drift shifts the champion's scores but not its ranking (the demo: it flags
36% of post-drift reviews against 25% actual, ROC-AUC still 0.87), a model
trained from scratch on a few thousand recent labels ranks worse than the
champion, while the champion's calibration and threshold are simply stale.
This recipe keeps the champion's ONNX graphs, tokenizer and parity record
byte for byte and refits only what sits on top of the raw score:

- ``train`` stage (``snapshot``): copy the champion's files, score every split
  of the recent prepared data ONCE with its raw (uncalibrated) served graph and
  store the scores (``RAW_SCORES``); nothing is trained, torch is not loaded;
- ``export`` stage (``export``): the provisional bundle is those same files
  with the champion's parity record (the graph is unchanged, so its parity
  gate still holds) and the stored scores;
- ``evaluate`` stage: the calibration (``training.calibrate.choose``) and the
  threshold (max spoiler F1) are fitted on the recent TRAIN split's stored
  scores (``refit``), the champion never saw those reviews; validation and
  test stay held out for the metrics, the reference, drift thresholds and
  quality floors, exactly as for a fine-tuned challenger.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from spoiler_common.bundle import BUNDLE_JSON, bundle_files, read_manifest
from spoiler_common.calibration import Calibration
from spoiler_common.exceptions import ModelBundleError
from spoiler_common.model_runtime import BatchPrediction, load_bundle
from training import calibrate
from training.data import read_split
from training.exceptions import TrainingError
from training.metrics import tune_threshold
from training.package import new_manifest, seal
from training.progress import Progress
from training.train import texts_digest

log = logging.getLogger(__name__)

RECIPE = "recalibrate"
RAW_SCORES = "champion_raw_scores.json"
TRAIN_INFO = "train.json"
SPLITS = ("train", "validation", "test")
# The split the calibration and threshold are fitted on (the manifest records it).
FIT_SPLIT = "train"
SCORE_SLICE = 64  # texts per progress step


def _champion(champion: Path) -> Any:
    try:
        return load_bundle(champion)  # checks every file's sha256 against bundle.json
    except ModelBundleError as exc:
        raise TrainingError(f"the recalibrate recipe needs a loadable champion at {champion}: "
                            f"{exc}") from exc


def champion_identity(champion: Path, recipe: str) -> dict[str, Any]:
    """What the `champion` stage records: the recipe, and for recalibrate the champion's
    version and file hashes, so a promotion re-runs the recipe and nothing else does."""
    if recipe != RECIPE:
        return {"recipe": recipe}  # a fine-tuned challenger does not depend on the champion
    manifest = read_manifest(champion)
    return {"recipe": recipe, "version": manifest.version, "files": dict(manifest.files),
            "default_variant": manifest.default_variant}


def _score(bundle: Any, texts: list[str], progress: Progress) -> BatchPrediction:
    parts: list[BatchPrediction] = [bundle.predict_raw([])]
    for start in range(0, len(texts), SCORE_SLICE):
        parts.append(bundle.predict_raw(texts[start:start + SCORE_SLICE]))
        progress.advance(len(parts[-1].probabilities))
    return BatchPrediction(np.concatenate([p.probabilities for p in parts]),
                           [t for p in parts for t in p.input_tokens],
                           [u for p in parts for u in p.unknown_tokens])


def snapshot(champion: Path, prepared: Path, out_dir: Path) -> dict[str, Any]:
    """The recipe's `train` stage: the champion's files and its raw scores of every split."""
    bundle = _champion(champion)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "champion").mkdir(parents=True)
    # Every graph the champion carries, so its served variant (default_variant) comes along.
    for file in (*bundle_files(bundle.path), BUNDLE_JSON):
        shutil.copy2(bundle.path / file, out_dir / "champion" / file)
    splits: dict[str, Any] = {}
    texts = {split: [r["text"] for r in read_split(prepared, split)] for split in SPLITS}
    with Progress("Scoring with the champion", sum(map(len, texts.values()))) as progress:
        for split in SPLITS:
            pred = _score(bundle, texts[split], progress)
            splits[split] = {"texts_sha256": texts_digest(texts[split]),
                             "scores": pred.probabilities.tolist(),
                             "input_tokens": list(pred.input_tokens),
                             "unknown_tokens": list(pred.unknown_tokens)}
    (out_dir / RAW_SCORES).write_text(json.dumps(
        {"variant": bundle.variant, "champion_version": bundle.version, "splits": splits}))
    info = {"recipe": RECIPE, "parent_version": bundle.version,
            "base_model": bundle.manifest.base_model, "max_length": bundle.max_length,
            "truncation": bundle.truncation, "served_variant": bundle.variant,
            "scored": {s: len(v["scores"]) for s, v in splits.items()}, "history": []}
    (out_dir / TRAIN_INFO).write_text(json.dumps(info, indent=2) + "\n")
    log.info("Recalibrate recipe: champion=%s variant=%s scored %s", bundle.version,
             bundle.variant, info["scored"])
    return info


def is_recalibrate(train_dir: Path) -> bool:
    info = train_dir / TRAIN_INFO
    return info.is_file() and json.loads(info.read_text()).get("recipe") == RECIPE


def export(train_dir: Path, out_dir: Path) -> dict[str, Any]:
    """The recipe's `export` stage: the champion's graphs as the provisional bundle, with the
    champion's parity record (same bytes, so the same gate result) and the stored scores."""
    source = train_dir / "champion"
    champion = read_manifest(source)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for file in bundle_files(source):
        shutil.copy2(source / file, out_dir / file)
    shutil.copy2(train_dir / RAW_SCORES, out_dir / RAW_SCORES)
    seal(out_dir, new_manifest(
        name="export", version="export", base_model=champion.base_model,
        max_length=champion.max_length, truncation=champion.truncation, threshold=0.5,
        default_variant=champion.default_variant, parity=champion.parity))
    report = {"recipe": RECIPE, "parent_version": champion.version,
              "served_variant": champion.default_variant,
              "parity": champion.parity.model_dump() if champion.parity else None}
    (out_dir / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def stored_scores(export_dir: Path) -> dict[str, Any] | None:
    """The recipe's stored raw scores in an export directory; None for a fine-tuned export."""
    path = export_dir / RAW_SCORES
    return json.loads(path.read_text()) if path.is_file() else None


def split_scores(stored: dict[str, Any], split: str, texts: list[str]) -> BatchPrediction:
    """One split's stored raw scores; refuses scores of other texts (a stale export)."""
    entry = stored["splits"].get(split)
    if entry is None or entry["texts_sha256"] != texts_digest(texts):
        raise TrainingError(f"the champion's stored scores of the {split} split are not of "
                            "the prepared texts: re-run the train stage (dvc repro --force)")
    return BatchPrediction(np.asarray(entry["scores"], dtype=float),
                           list(entry["input_tokens"]), list(entry["unknown_tokens"]))


def refit(labels: np.ndarray, raw: np.ndarray, seed: int = 42
          ) -> tuple[Calibration, dict[str, Any], float]:
    """Calibration (chosen by cross-fitted Brier, as training does) and the threshold of
    max spoiler F1 on the calibrated scores, both from one split's labels and raw scores."""
    labels = np.asarray(labels, dtype=int)
    calibration, report = calibrate.choose(labels, raw, seed, split=FIT_SPLIT)
    report = {**report, "fitted_on": FIT_SPLIT, "n": len(labels)}
    threshold = tune_threshold(labels, calibration.apply(np.asarray(raw, dtype=float)))
    return calibration, report, threshold


__all__ = ["champion_identity", "export", "is_recalibrate", "refit", "snapshot",
           "split_scores", "stored_scores"]
