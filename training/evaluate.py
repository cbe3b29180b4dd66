"""evaluate: calibrate, tune the threshold and measure the exported int8 model.

Everything goes through the serving runtime (``spoiler_common.model_runtime``):
1. raw int8 scores of the validation and test splits;
2. the calibration (``training.calibrate``), fitted on validation and chosen by
   cross-fitted validation Brier score;
3. the threshold, tuned on the *calibrated* validation scores (max spoiler F1);
   (the ``recalibrate`` retrain recipe, ``training.recalibrate``, fits 2 and 3 on the
   recent train split's stored champion scores instead: validation stays held out);
4. test metrics at the natural spoiler rate (ROC-AUC, PR-AUC, F1, accuracy,
   Brier, ECE), before and after calibration, beside the baselines of the same
   split (``training.baseline``): the stage fails when the model's test ROC-AUC
   is more than ``max_auc_gap`` below TF-IDF's (a model worse than the simple
   baseline must not be served);
5. the monitor's reference, drift thresholds and quality floors
   (``training.reference``).
Writes evaluation.json (what package puts into bundle.json), metrics.json (the
flat view `dvc metrics show` prints) and plot data for `dvc plots`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from spoiler_common.bundle import Metrics
from spoiler_common.calibration import expected_calibration_error
from spoiler_common.model_runtime import load_bundle
from training import calibrate, plots, recalibrate, reference
from training.data import read_split
from training.exceptions import BaselineGateError
from training.metrics import classification_metrics, flat, tune_threshold

log = logging.getLogger(__name__)

# What goes into bundle.json's `metrics` and `validation_metrics` (the manifest's block).
BUNDLE_METRICS = tuple(Metrics.model_fields)
GATE_BASELINE = "tfidf_logreg"


def _validation_scores(bundle: Any, export_dir: Path, texts: list[str]) -> Any:
    """Raw validation scores of the served graph: export's parity gate has them already."""
    from spoiler_common.model_runtime import BatchPrediction
    from training.export import SERVED_SCORES
    from training.train import texts_digest

    saved = export_dir / SERVED_SCORES
    known = json.loads(saved.read_text()) if saved.is_file() else {}
    if known.get("variant") != bundle.variant or known.get("texts_sha256") != texts_digest(texts):
        return bundle.predict_raw(texts)
    # Token counts are cheap (no model call) and not in the file.
    counts = bundle.encoder._encode(texts)
    return BatchPrediction(np.asarray(known["scores"], dtype=float), counts[1], counts[2])


def _with_ece(metrics: dict[str, Any], labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    return {**metrics, "ece": expected_calibration_error(labels, scores)}


def baseline_gate(model_auc: float, baselines: dict[str, Any] | None,
                  max_gap: float | None) -> dict[str, Any]:
    """Whether the model's test ROC-AUC is within `max_gap` of the TF-IDF baseline's."""
    if not baselines or GATE_BASELINE not in baselines:
        return {"checked": False, "reason": "no baseline computed"}
    base_auc = float(baselines[GATE_BASELINE]["test"]["roc_auc"])
    gate = {"checked": max_gap is not None, "baseline": GATE_BASELINE,
            "baseline_roc_auc": base_auc, "model_roc_auc": model_auc,
            "max_gap": max_gap, "gap": base_auc - model_auc}
    gate["passed"] = max_gap is None or model_auc >= base_auc - max_gap
    return gate


def run(export_dir: Path, prepared: Path, out_dir: Path, *, baselines: dict[str, Any] | None,
        max_auc_gap: float | None = 0.02, threads: int = 2, seed: int = 42) -> dict[str, Any]:
    bundle = load_bundle(export_dir, variant="auto", threads=threads)  # the graph it serves
    val_rows, test_rows = read_split(prepared, "validation"), read_split(prepared, "test")
    y_val = np.asarray([r["label"] for r in val_rows])
    y_test = np.asarray([r["label"] for r in test_rows])
    stored = recalibrate.stored_scores(export_dir)
    if stored is None:  # a fine-tuned model: fit on validation, as the first training did
        val = _validation_scores(bundle, export_dir, [r["text"] for r in val_rows])
        test = bundle.predict_raw([r["text"] for r in test_rows])
        fit_y, fit_raw = y_val, val.probabilities
        calibration, cal_report = calibrate.choose(y_val, val.probabilities, seed)
        threshold = tune_threshold(y_val, calibration.apply(val.probabilities))
    else:  # the recalibrate recipe: the champion's stored scores; fit on the recent train split
        val = recalibrate.split_scores(stored, "validation", [r["text"] for r in val_rows])
        test = recalibrate.split_scores(stored, "test", [r["text"] for r in test_rows])
        train_rows = read_split(prepared, recalibrate.FIT_SPLIT)
        fit_y = np.asarray([r["label"] for r in train_rows])
        fit_raw = recalibrate.split_scores(stored, recalibrate.FIT_SPLIT,
                                           [r["text"] for r in train_rows]).probabilities
        calibration, cal_report, threshold = recalibrate.refit(fit_y, fit_raw, seed)
    p_val = calibration.apply(val.probabilities)
    p_test = calibration.apply(test.probabilities)
    result: dict[str, Any] = {
        "recipe": "finetune" if stored is None else recalibrate.RECIPE,
        "variant": bundle.variant,
        "threshold": threshold,
        "calibration": cal_report,
        "validation": _with_ece(classification_metrics(y_val, p_val, threshold), y_val, p_val),
        "test": _with_ece(classification_metrics(y_test, p_test, threshold), y_test, p_test),
        # The same test scores before calibration, at the raw threshold of equal F1 tuning
        # (for the recalibrate recipe: the champion's raw scores, threshold refitted).
        "test_uncalibrated": _with_ece(
            classification_metrics(y_test, test.probabilities,
                                   tune_threshold(fit_y, fit_raw)),
            y_test, test.probabilities),
        "baselines": baselines or {},
    }
    result["baseline_gate"] = baseline_gate(result["test"]["roc_auc"], baselines, max_auc_gap)
    result["bundle_metrics"] = {k: result["test"][k] for k in BUNDLE_METRICS}
    result["validation_metrics"] = {k: result["validation"][k] for k in BUNDLE_METRICS}

    held_out = val_rows + test_rows
    values = reference.feature_values(
        held_out, np.concatenate([p_val, p_test]), [*val.input_tokens, *test.input_tokens],
        [*val.unknown_tokens, *test.unknown_tokens])
    ref = reference.build(values, "validation+test")
    result["reference"] = ref
    result["drift_thresholds"] = reference.thresholds(ref, seed=seed)
    result["quality_floors"] = reference.quality_floors(y_test, p_test, threshold, seed=seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    metrics = {
        "recipe": result["recipe"],
        "threshold": threshold,
        "calibration": {"method": cal_report["method"],
                        "test_brier_before": result["test_uncalibrated"]["brier"],
                        "test_brier_after": result["test"]["brier"],
                        "test_ece_before": result["test_uncalibrated"]["ece"],
                        "test_ece_after": result["test"]["ece"]},
        "test": flat(result["test"]),
        "validation": flat(result["validation"]),
        "baselines": {name: flat(b["test"]) for name, b in (baselines or {}).items()},
        "baseline_gate": {k: v for k, v in result["baseline_gate"].items()
                          if isinstance(v, int | float | bool)},
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plots.write_all(out_dir / "plots", y_test, p_test, threshold)
    plots.write_reliability(out_dir / "plots", y_test, test.probabilities, p_test)
    log.info("Evaluated threshold=%.4f calibration=%s test_roc_auc=%.4f test_f1_spoiler=%.4f "
             "test_brier=%.4f->%.4f test_ece=%.4f->%.4f n_test=%d", threshold,
             cal_report["method"], result["test"]["roc_auc"], result["test"]["f1_spoiler"],
             result["test_uncalibrated"]["brier"], result["test"]["brier"],
             result["test_uncalibrated"]["ece"], result["test"]["ece"], len(test_rows))
    gate = result["baseline_gate"]
    if gate.get("checked") and not gate["passed"]:
        raise BaselineGateError(
            f"the model's test ROC-AUC {gate['model_roc_auc']:.4f} is more than "
            f"{gate['max_gap']} below the {GATE_BASELINE} baseline's "
            f"{gate['baseline_roc_auc']:.4f} "
            f"on the same split (see {out_dir / 'metrics.json'}): a model worse than the simple "
            "baseline is not packaged. Train longer or on more data, or raise "
            "evaluate.max_auc_gap in the params file if you accept it"
        )
    return result
