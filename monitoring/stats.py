"""Metric math, pure numpy: drift statistics, windowed classification metrics, CBPE.

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
from numpy.typing import ArrayLike, NDArray

NAN = float("nan")
# Floor for empty bins in PSI: ln(p/q) is infinite when a bin is empty on one side.
# Each side's floor is half an observation (0.5 / n), at least PSI_EPS: a fixed tiny
# floor alone makes one empty bin of a small window look like a large shift.
PSI_EPS = 1e-4


def histogram(values: ArrayLike, edges: Sequence[float]) -> NDArray[np.int64]:
    """Counts of `values` in the bins given by `edges` (len(edges) - 1 bins).

    Bins are left-closed like numpy's, the last one closed on both sides; values
    below the first edge count in the first bin and values above the last edge
    in the last bin, so a shifted distribution shows up as mass in the end bins
    rather than disappearing. NaN values are dropped.
    """
    edges_arr = np.asarray(edges, dtype=float)
    if edges_arr.ndim != 1 or len(edges_arr) < 2 or np.any(np.diff(edges_arr) <= 0):
        raise ValueError("edges must be a strictly increasing sequence of at least 2 numbers")
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[~np.isnan(arr)]
    idx = np.searchsorted(edges_arr, arr, side="right") - 1
    idx = np.clip(idx, 0, len(edges_arr) - 2)
    return np.bincount(idx, minlength=len(edges_arr) - 1).astype(np.int64)


def _proportions(counts: ArrayLike) -> NDArray[np.float64] | None:
    arr = np.asarray(counts, dtype=float)
    total = arr.sum()
    if total <= 0:
        return None
    return arr / total


def psi(reference_counts: ArrayLike, current_counts: ArrayLike, eps: float = PSI_EPS) -> float:
    """Population stability index of two histograms (counts) over the same bins.

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i) with c, r the bin proportions, each
    floored at max(eps, 0.5 / n) for its side's total n. 0 = identical;
    > 0.1 moderate, > 0.2 large shift.
    """
    ref = _proportions(reference_counts)
    cur = _proportions(current_counts)
    if ref is None or cur is None:
        return NAN
    if ref.shape != cur.shape:
        raise ValueError(f"histograms differ in bins: {ref.shape} vs {cur.shape}")
    ref = np.maximum(ref, max(eps, 0.5 / float(np.sum(reference_counts))))
    cur = np.maximum(cur, max(eps, 0.5 / float(np.sum(current_counts))))
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_binned(reference_counts: ArrayLike, current_counts: ArrayLike) -> float:
    """Two-sample Kolmogorov–Smirnov statistic of two histograms over the same bins.

    The largest gap between the two empirical CDFs at the bin edges: the exact
    statistic of the binned samples, a lower bound of the one on raw values.
    """
    ref = _proportions(reference_counts)
    cur = _proportions(current_counts)
    if ref is None or cur is None:
        return NAN
    if ref.shape != cur.shape:
        raise ValueError(f"histograms differ in bins: {ref.shape} vs {cur.shape}")
    return float(np.max(np.abs(np.cumsum(ref) - np.cumsum(cur))))


def ks_2samp(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sample Kolmogorov–Smirnov statistic of two raw samples (sup |F_a - F_b|)."""
    x = np.sort(np.asarray(a, dtype=float).ravel())
    y = np.sort(np.asarray(b, dtype=float).ravel())
    if len(x) == 0 or len(y) == 0:
        return NAN
    grid = np.concatenate([x, y])
    fa = np.searchsorted(x, grid, side="right") / len(x)
    fb = np.searchsorted(y, grid, side="right") / len(y)
    return float(np.max(np.abs(fa - fb)))


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
class Calibration:
    """Maps raw model scores to probabilities for the CBPE estimate.

    `method` "identity" (scores already calibrated), "platt" (sigmoid(a*logit(s)+b)),
    "temperature" (sigmoid(logit(s)/t)) or "binning" (piecewise-linear map from
    `x` to `y`, e.g. a reliability curve).
    """

    method: str = "identity"
    a: float = 1.0
    b: float = 0.0
    t: float = 1.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, scores: ArrayLike) -> NDArray[np.float64]:
        s = np.clip(np.asarray(scores, dtype=float), 1e-7, 1 - 1e-7)
        if self.method == "identity":
            return s
        logit = np.log(s / (1 - s))
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * logit + self.b)))
        if self.method == "temperature":
            return 1.0 / (1.0 + np.exp(-logit / self.t))
        if self.method == "binning":
            return np.clip(np.interp(s, self.x, self.y), 0.0, 1.0)
        raise ValueError(f"unknown calibration method {self.method!r}")


@dataclass(frozen=True)
class Estimate:
    """Expected confusion counts and metrics without labels (CBPE)."""

    tp: float
    fp: float
    tn: float
    fn: float
    accuracy: float
    precision: float
    recall: float
    f1: float


def cbpe(
    scores: ArrayLike, threshold: float | ArrayLike,
    calibration: Calibration | None = None,
) -> Estimate:
    """Confidence-based performance estimate (in the spirit of NannyML's CBPE).

    With calibrated probability p of "spoiler", a prediction "spoiler" (p_raw >=
    threshold) is right with probability p and "no spoiler" with 1 - p; summing
    those gives expected TP/FP/TN/FN and from them the expected metrics. Exact
    in expectation when the calibration is right; nan for an empty window.
    """
    raw = np.asarray(scores, dtype=float).ravel()
    if len(raw) == 0:
        return Estimate(NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN)
    p = (calibration or Calibration()).apply(raw)
    predicted = raw >= np.asarray(threshold, dtype=float)
    tp = float(p[predicted].sum())
    fp = float((1 - p[predicted]).sum())
    fn = float(p[~predicted].sum())
    tn = float((1 - p[~predicted]).sum())
    n = len(raw)
    return Estimate(
        tp=tp, fp=fp, tn=tn, fn=fn,
        accuracy=(tp + tn) / n,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


def quantiles(values: ArrayLike, qs: Sequence[float], min_count: int = 1) -> list[float]:
    """Quantiles (linear interpolation) of the non-NaN values; nan below `min_count`."""
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[~np.isnan(arr)]
    if len(arr) < max(min_count, 1):
        return [NAN for _ in qs]
    return [float(v) for v in np.quantile(arr, list(qs))]


__all__ = [
    "NAN",
    "PSI_EPS",
    "Calibration",
    "Confusion",
    "Estimate",
    "cbpe",
    "classification_metrics",
    "confusion",
    "histogram",
    "ks_2samp",
    "ks_binned",
    "psi",
    "quantiles",
    "roc_auc",
]
