"""Classification metrics shared by evaluate, baseline, export and crossval (pure numpy/sklearn)."""

from __future__ import annotations

from typing import Any

import numpy as np


def tune_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold maximising the spoiler class's F1 (tuned on validation, never on test)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = np.where(precision + recall > 0, 2 * precision * recall /
                  np.maximum(precision + recall, 1e-12), 0.0)[:-1]
    if len(thresholds) == 0:
        return 0.5
    best = int(np.argmax(f1))
    return float(thresholds[best])


def classification_metrics(labels: np.ndarray, scores: np.ndarray,
                           threshold: float) -> dict[str, Any]:
    """ROC-AUC, PR-AUC, spoiler F1, macro F1, accuracy, Brier, confusion matrix at `threshold`."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    pred = (scores >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    return {
        "n": len(labels),
        "spoiler_rate": round(float(labels.mean()), 6),
        "threshold": round(float(threshold), 6),
        "roc_auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "pr_auc": float(average_precision_score(labels, scores)) if both else float("nan"),
        "f1_spoiler": float(f1_score(labels, pred, pos_label=1, zero_division=0)),
        "precision_spoiler": float(precision_score(labels, pred, zero_division=0)),
        "recall_spoiler": float(recall_score(labels, pred, zero_division=0)),
        "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(labels, pred)),
        "brier": float(brier_score_loss(labels, scores)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric metrics as one flat dict (for MLflow and bundle.json)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}_"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out
