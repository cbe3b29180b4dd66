"""Metric math, pure numpy: windowed classification metrics, CBPE, sampling errors.

Drift statistics are not here: they live in ``spoiler_common.drift``, the one
definition packaging (thresholds) and the monitor (live values) share.

Every function returns ``nan`` where the statistic is undefined (an empty window,
a single class): the caller turns ``nan`` into an *absent* Prometheus series, never
into a misleading 0 or 1. Minimum counts are applied by the caller (see
``monitoring.window``), so these functions stay exact and easy to check by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

NAN = float("nan")


@dataclass(frozen=True)
class Confusion:
    """Confusion-matrix counts; the spoiler class is the positive one."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn


def confusion(actual: ArrayLike, predicted: ArrayLike) -> Confusion:
    """Confusion counts of boolean arrays (True = spoiler)."""
    y = np.asarray(actual, dtype=bool).ravel()
    p = np.asarray(predicted, dtype=bool).ravel()
    if y.shape != p.shape:
        raise ValueError(f"actual and predicted differ in length: {y.shape} vs {p.shape}")
    return Confusion(
        tp=int(np.sum(y & p)), fp=int(np.sum(~y & p)),
        tn=int(np.sum(~y & ~p)), fn=int(np.sum(y & ~p)),
    )


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else NAN


def classification_metrics(
    c: Confusion, min_labelled: int = 1, min_class: int = 1
) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the spoiler class from confusion counts.

    nan where the window is too small: accuracy and F1 need `min_labelled`
    labelled predictions; precision needs `min_class` predicted spoilers, recall
    `min_class` actual spoilers, and F1 both.
    """
    out = {"accuracy": NAN, "precision": NAN, "recall": NAN, "f1": NAN}
    if c.n < max(min_labelled, 1):
        return out
    out["accuracy"] = (c.tp + c.tn) / c.n
    predicted_pos, actual_pos = c.tp + c.fp, c.tp + c.fn
    if predicted_pos >= max(min_class, 1):
        out["precision"] = c.tp / predicted_pos
    if actual_pos >= max(min_class, 1):
        out["recall"] = c.tp / actual_pos
    if not (math.isnan(out["precision"]) or math.isnan(out["recall"])):
        # 2TP / (2TP + FP + FN): defined (= 0) even when TP = 0.
        out["f1"] = _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)
    return out


def roc_auc(actual: ArrayLike, scores: ArrayLike, min_class: int = 1) -> float:
    """ROC-AUC by the Mann–Whitney U statistic (ties count one half).

    nan unless both classes have at least `min_class` members.
    """
    y = np.asarray(actual, dtype=bool).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos < max(min_class, 1) or n_neg < max(min_class, 1):
        return NAN
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=float)
    # Average ranks over ties (1-based).
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@dataclass(frozen=True)
class Estimate:
    """Expected confusion counts and metrics without labels (CBPE).

    `accuracy_se` and `f1_se`: the standard deviation of the realised metric
    around the estimate if the probabilities are calibrated (labels drawn as
    Bernoulli(p)): the estimate's own sampling error on these rows.
    """

    tp: float
    fp: float
    tn: float
    fn: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    accuracy_se: float
    f1_se: float


def cbpe(probabilities: ArrayLike, predicted: ArrayLike) -> Estimate:
    """Confidence-based performance estimate (in the spirit of NannyML's CBPE).

    `probabilities` are calibrated probabilities of "spoiler" (the runtime applies
    the bundle's calibration), `predicted` the decisions made. A prediction
    "spoiler" is right with probability p, "no spoiler" with 1 - p; summing those
    gives expected TP/FP/TN/FN and from them the expected metrics. Exact in
    expectation when the calibration holds; nan for an empty window.
    """
    p = np.clip(np.asarray(probabilities, dtype=float).ravel(), 0.0, 1.0)
    pred = np.asarray(predicted, dtype=bool).ravel()
    if p.shape != pred.shape:
        raise ValueError(f"probabilities and predicted differ in length: {p.shape} vs "
                         f"{pred.shape}")
    n = len(p)
    if n == 0:
        return Estimate(NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN)
    tp = float(p[pred].sum())
    fp = float((1 - p[pred]).sum())
    fn = float(p[~pred].sum())
    tn = float((1 - p[~pred]).sum())
    # Each row is right with probability q = p (predicted spoiler) or 1 - p: the realised
    # accuracy is a mean of independent Bernoulli(q), variance sum q(1-q) / n^2.
    var = p * (1 - p)
    var_tp, var_fn = float(var[pred].sum()), float(var[~pred].sum())
    accuracy_se = math.sqrt(var_tp + var_fn) / n
    # F1 = 2 TP / (m + TP + FN), m = predicted spoilers (fixed): delta method in TP and FN.
    m = float(pred.sum())
    den = m + tp + fn
    f1_se = (math.sqrt((2 * (m + fn) / den**2) ** 2 * var_tp + (2 * tp / den**2) ** 2 * var_fn)
             if den > 0 else NAN)
    return Estimate(
        tp=tp, fp=fp, tn=tn, fn=fn,
        accuracy=(tp + tn) / n,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        accuracy_se=accuracy_se,
        f1_se=f1_se,
    )


def estimate_error_limits(probabilities: ArrayLike, predicted: ArrayLike,
                          calibration_error: float, level_error: float, z: float
                          ) -> tuple[float, float]:
    """Largest |estimated - realised| (accuracy, F1) calibrated scores explain here.

    Each limit is z standard errors of the realised metric (labels drawn from the
    probabilities) plus what miscalibration can add: the estimate recomputed with every
    probability moved by `level_error` either way (the calibration's level is known only
    as well as the test split measured it), and for accuracy at least the test split's
    ECE. The level matters little for accuracy when about half the predictions are
    spoilers (the shifts cancel) but fully when nearly all are one class, and F1, which
    counts expected true positives twice and ignores true negatives, always feels it.
    """
    p = np.clip(np.asarray(probabilities, dtype=float).ravel(), 0.0, 1.0)
    est = cbpe(p, predicted)
    moved = [cbpe(np.clip(p + d, 0.0, 1.0), predicted) for d in (level_error, -level_error)]

    def shift(metric: str) -> float:
        base = getattr(est, metric)
        return max((abs(getattr(m, metric) - base) for m in moved
                    if math.isfinite(getattr(m, metric))), default=0.0)

    accuracy = max(calibration_error, shift("accuracy")) + z * est.accuracy_se
    f1 = shift("f1") + z * est.f1_se if math.isfinite(est.f1) else NAN
    return accuracy, f1


def proportion_se(p: float, *sizes: float) -> float:
    """Standard error of the difference of proportions p measured on samples of `sizes`.

    sqrt(p(1-p) * sum(1/n)): e.g. a window's share against the test split's.
    """
    if not 0.0 <= p <= 1.0 or any(n <= 0 for n in sizes):
        return NAN
    return math.sqrt(p * (1 - p) * sum(1.0 / n for n in sizes))


def quantiles(values: ArrayLike, qs: Sequence[float], min_count: int = 1) -> list[float]:
    """Quantiles (linear interpolation) of the non-NaN values; nan below `min_count`."""
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[~np.isnan(arr)]
    if len(arr) < max(min_count, 1):
        return [NAN for _ in qs]
    return [float(v) for v in np.quantile(arr, list(qs))]


__all__ = [
    "NAN",
    "Confusion",
    "Estimate",
    "cbpe",
    "classification_metrics",
    "confusion",
    "proportion_se",
    "quantiles",
    "roc_auc",
]
