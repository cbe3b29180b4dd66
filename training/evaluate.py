"""evaluate: score the exported int8 model through the serving runtime.

The threshold is tuned on the validation split (max F1 of the spoiler class);
the test split, at its natural spoiler rate, gives ROC-AUC, PR-AUC, spoiler
F1, macro F1, accuracy, the confusion matrix and the Brier score. Writes
metrics.json, plot data (JSON/CSV for `dvc plots`), PNGs and the reference
histograms that package puts in bundle.json.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from spoiler_common.model_runtime import load_bundle
from training import plots, reference
from training.data import read_split
from training.metrics import classification_metrics, flat, tune_threshold

log = logging.getLogger(__name__)

# What goes into bundle.json's `metrics` (flat floats; the monitor reads them).
BUNDLE_METRICS = ("roc_auc", "pr_auc", "f1_spoiler", "macro_f1", "accuracy", "brier",
                  "precision_spoiler", "recall_spoiler", "spoiler_rate")


def score_split(bundle: Any, rows: list[dict[str, Any]]) -> Any:
    return bundle.predict([r["text"] for r in rows])


def evaluate_scores(val_labels: np.ndarray, val_scores: np.ndarray, test_labels: np.ndarray,
                    test_scores: np.ndarray) -> dict[str, Any]:
    threshold = tune_threshold(val_labels, val_scores)
    return {
        "threshold": threshold,
        "validation": classification_metrics(val_labels, val_scores, threshold),
        "test": classification_metrics(test_labels, test_scores, threshold),
    }


def run(export_dir: Path, prepared: Path, out_dir: Path, threads: int = 2) -> dict[str, Any]:
    bundle = load_bundle(export_dir, variant="int8", threads=threads)
    val_rows, test_rows = read_split(prepared, "validation"), read_split(prepared, "test")
    val, test = score_split(bundle, val_rows), score_split(bundle, test_rows)
    val_labels = np.asarray([r["label"] for r in val_rows])
    test_labels = np.asarray([r["label"] for r in test_rows])
    result = evaluate_scores(val_labels, val.probabilities, test_labels, test.probabilities)
    result["variant"] = "int8"
    result["bundle_metrics"] = {k: result["test"][k] for k in BUNDLE_METRICS}
    result["reference"] = reference.build(val_rows, val.probabilities, val.input_tokens,
                                          val.unknown_tokens)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    # metrics.json: the flat view `dvc metrics show` prints.
    metrics = {"threshold": result["threshold"], "test": flat(result["test"]),
               "validation": flat(result["validation"])}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plots.write_all(out_dir / "plots", test_labels, test.probabilities, result["threshold"])
    log.info("Evaluated threshold=%.4f test_roc_auc=%.4f test_f1_spoiler=%.4f n_test=%d",
             result["threshold"], result["test"]["roc_auc"], result["test"]["f1_spoiler"],
             len(test_rows))
    return result
