"""Plot data for `dvc plots` (JSON/CSV) and PNG renderings of the same curves."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _thin(xs: np.ndarray, ys: np.ndarray, limit: int = 400) -> tuple[np.ndarray, np.ndarray]:
    if len(xs) <= limit:
        return xs, ys
    idx = np.linspace(0, len(xs) - 1, limit).astype(int)
    return xs[idx], ys[idx]


def write_all(out: Path, labels: np.ndarray, scores: np.ndarray, threshold: float,
              png: bool = True) -> None:
    from sklearn.metrics import precision_recall_curve, roc_curve

    out.mkdir(parents=True, exist_ok=True)
    fpr, tpr, _ = roc_curve(labels, scores)
    fpr, tpr = _thin(fpr, tpr)
    precision, recall, _ = precision_recall_curve(labels, scores)
    recall, precision = _thin(recall, precision)
    (out / "roc.json").write_text(json.dumps(
        {"roc": [{"fpr": float(a), "tpr": float(b)} for a, b in zip(fpr, tpr, strict=True)]}))
    (out / "pr.json").write_text(json.dumps(
        {"pr": [{"recall": float(a), "precision": float(b)}
                for a, b in zip(recall, precision, strict=True)]}))
    pred = (scores >= threshold).astype(int)
    with (out / "confusion.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        for a, p in zip(labels, pred, strict=True):
            writer.writerow(["spoiler" if a else "not_spoiler", "spoiler" if p else "not_spoiler"])
    edges = np.linspace(0, 1, 21)
    hist = {}
    for label, name in ((0, "not_spoiler"), (1, "spoiler")):
        counts, _ = np.histogram(scores[labels == label], bins=edges)
        hist[name] = counts
    (out / "scores.json").write_text(json.dumps({"scores": [
        {"bin": round(float(edges[i]), 2), "not_spoiler": int(hist["not_spoiler"][i]),
         "spoiler": int(hist["spoiler"][i])} for i in range(20)]}))
    if png:
        _png(out, fpr, tpr, recall, precision, labels, pred, scores, threshold)


def write_reliability(out: Path, labels: np.ndarray, raw: np.ndarray,
                      calibrated: np.ndarray, bins: int = 10) -> None:
    """Reliability diagram data (`dvc plots`): observed spoiler rate per score bin,
    before and after calibration, and a PNG of both."""
    from spoiler_common.calibration import reliability

    out.mkdir(parents=True, exist_ok=True)
    points = [{**pt, "scores": name} for name, scores in (("raw", raw), ("calibrated", calibrated))
              for pt in reliability(labels, scores, bins)]
    (out / "calibration.json").write_text(json.dumps({"calibration": points}))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    for name, scores in (("raw", raw), ("calibrated", calibrated)):
        pts = reliability(labels, scores, bins)
        ax.plot([p["predicted"] for p in pts], [p["observed"] for p in pts], "o-", label=name)
    ax.set(title="Reliability (test)", xlabel="mean P(spoiler) in bin",
           ylabel="observed spoiler rate", xlim=(0, 1), ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=80)
    plt.close(fig)


def _png(out: Path, fpr: np.ndarray, tpr: np.ndarray, recall: np.ndarray,
         precision: np.ndarray, labels: np.ndarray, pred: np.ndarray, scores: np.ndarray,
         threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    axes[0].plot(fpr, tpr)
    axes[0].plot([0, 1], [0, 1], "--", color="grey")
    axes[0].set(title="ROC (test)", xlabel="false positive rate", ylabel="true positive rate")
    axes[1].plot(recall, precision)
    axes[1].axhline(labels.mean(), ls="--", color="grey")
    axes[1].set(title="Precision-recall (test)", xlabel="recall", ylabel="precision")
    cm = np.zeros((2, 2), dtype=int)
    for a, p in zip(labels, pred, strict=True):
        cm[a, p] += 1
    axes[2].imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        axes[2].text(j, i, str(v), ha="center", va="center")
    axes[2].set(title=f"Confusion @ {threshold:.3f}", xticks=[0, 1], yticks=[0, 1],
                xticklabels=["not", "spoiler"], yticklabels=["not", "spoiler"],
                xlabel="predicted", ylabel="actual")
    axes[3].hist([scores[labels == 0], scores[labels == 1]], bins=20, range=(0, 1),
                 label=["not spoiler", "spoiler"], stacked=True)
    axes[3].axvline(threshold, color="black", ls="--")
    axes[3].set(title="Score histogram (test)", xlabel="P(spoiler)")
    axes[3].legend()
    fig.tight_layout()
    fig.savefig(out / "evaluation.png", dpi=80)
    plt.close(fig)
