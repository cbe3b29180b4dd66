"""Drift statistics, and the features they watch: the one definition both sides share.

Packaging computes each statistic's null distribution on the model's own
reference (``bundle.json``'s ``drift_thresholds``); the monitor computes the
same statistic on live windows and compares. Both must use the very same bins
and formulas, so they live here, in pure numpy.

Statistics (all on binned counts, so a reference histogram is all they need):

- ``psi``: population stability index with the same pseudo-count on both sides;
  bins empty on both sides are skipped. Its expected value on two samples of one
  distribution is about ``(k - 1) * (1/n + 1/N)``: never 0, larger for small
  windows, which is why thresholds depend on the window size ``n``.
- ``ks``: the two-sample Kolmogorov–Smirnov statistic of the binned samples
  (ordered features only).
- ``chi2``: Pearson's chi-squared statistic of homogeneity (reference vs window,
  2 x k table) for categorical features, where bin order means nothing.

Thresholds: :func:`null_thresholds` simulates both sides' sampling (a reference
of the reference's size and a window of size ``n``, both drawn from the
reference's proportions) and keeps the ``1 - alpha`` quantile: the value an
unchanged stream exceeds only ``alpha`` of the time. :class:`SizeCurve` reads
such a table at any ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Statistic = Literal["psi", "ks", "chi2"]
NAN = float("nan")
# Added to every bin of both sides before PSI's log ratio: the same on both
# sides, so two equal histograms give exactly 0 whatever their sizes.
PSI_PSEUDO_COUNT = 0.5
# Prior count per bin of the proportions null thresholds sample from (Jeffreys).
NULL_PRIOR = 0.5
# Smallest window worth testing: about five expected values a bin (the usual
# rule for chi-squared-type statistics), and never fewer than this.
MIN_PER_BIN = 5
MIN_SAMPLE_FLOOR = 30
# Window sizes at which packaging tabulates thresholds (the monitor interpolates).
THRESHOLD_SIZES: tuple[int, ...] = (
    30, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
)


@dataclass(frozen=True)
class Feature:
    """One watched input or output: its bins and which statistics suit it."""

    name: str
    edges: tuple[float, ...]
    statistics: tuple[Statistic, ...]
    description: str

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    @property
    def min_sample(self) -> int:
        """Values a window needs before any statistic of this feature is reported."""
        return max(MIN_SAMPLE_FLOOR, MIN_PER_BIN * self.bins)


# The watched features (the `feature` label of every drift series). Scores,
# lengths and unknown-token shares are ordered: PSI (size of the shift) and KS
# (largest CDF gap). Ratings and "summary empty" are categories: chi-squared.
FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("score", tuple(round(i / 20, 2) for i in range(21)), ("psi", "ks"),
                "spoiler_probability (calibrated) of each prediction"),
        Feature("text_words", (0, 25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 100_000),
                ("psi", "ks"), "words in review_text"),
        Feature("rating", tuple(0.5 + i for i in range(11)), ("chi2",),
                "the review's rating 1-10 (reviews without one are left out)"),
        Feature("unknown_token_share", (0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 1.0),
                ("psi", "ks"), "share of [UNK] word pieces (vocabulary the model never saw)"),
        Feature("empty_summary", (0.0, 0.5, 1.0), ("chi2",),
                "1 when review_summary is empty, else 0"),
    )
}


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


def _pair(reference: ArrayLike, current: ArrayLike) -> tuple[NDArray[np.float64],
                                                                NDArray[np.float64]] | None:
    """Both count vectors as floats along their last axis; None if either side is empty."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.shape[-1] != cur.shape[-1]:
        raise ValueError(f"histograms differ in bins: {ref.shape[-1]} vs {cur.shape[-1]}")
    if np.any(ref.sum(axis=-1) <= 0) or np.any(cur.sum(axis=-1) <= 0):
        return None
    return ref, cur


def psi(reference: ArrayLike, current: ArrayLike,
        pseudo_count: float = PSI_PSEUDO_COUNT) -> float | NDArray[np.float64]:
    """Population stability index of two histograms (counts) over the same bins.

    PSI = sum_i (c_i - r_i) ln(c_i / r_i), with c and r the proportions after
    adding `pseudo_count` to every bin of both sides; bins empty on both sides
    are left out. Works on batches (leading axes) too. nan if a side is empty.
    """
    pair = _pair(reference, current)
    if pair is None:
        return NAN
    ref, cur = pair
    used = (ref + cur) > 0  # a bin empty on both sides says nothing
    r = np.where(used, ref + pseudo_count, 0.0)
    c = np.where(used, cur + pseudo_count, 0.0)
    r = r / r.sum(axis=-1, keepdims=True)
    c = c / c.sum(axis=-1, keepdims=True)
    ratio = np.divide(c, r, out=np.ones_like(c), where=used)
    terms = (c - r) * np.log(ratio)
    out = terms.sum(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def ks_binned(reference: ArrayLike, current: ArrayLike) -> float | NDArray[np.float64]:
    """Two-sample Kolmogorov–Smirnov statistic of two histograms over the same bins.

    The largest gap between the two empirical CDFs at the bin edges: the exact
    statistic of the binned samples, a lower bound of the one on raw values.
    """
    pair = _pair(reference, current)
    if pair is None:
        return NAN
    ref, cur = pair
    gap = np.abs(np.cumsum(ref / ref.sum(axis=-1, keepdims=True), axis=-1)
                 - np.cumsum(cur / cur.sum(axis=-1, keepdims=True), axis=-1))
    out = gap.max(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def chi2(reference: ArrayLike, current: ArrayLike) -> float | NDArray[np.float64]:
    """Pearson's chi-squared statistic of homogeneity of two histograms (2 x k table).

    Expected counts come from the pooled proportions; bins empty on both sides
    are left out. Unlike PSI it needs no pseudo-count.
    """
    pair = _pair(reference, current)
    if pair is None:
        return NAN
    ref, cur = pair
    n_ref = ref.sum(axis=-1, keepdims=True)
    n_cur = cur.sum(axis=-1, keepdims=True)
    pooled = (ref + cur) / (n_ref + n_cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ref, e_cur = pooled * n_ref, pooled * n_cur
        terms = np.where(pooled > 0, (ref - e_ref) ** 2 / e_ref + (cur - e_cur) ** 2 / e_cur,
                         0.0)
    out = terms.sum(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


STATISTICS: dict[Statistic, Callable[[ArrayLike, ArrayLike], float | NDArray[np.float64]]] = {
    "psi": psi,
    "ks": ks_binned,
    "chi2": chi2,
}


def statistic(name: Statistic, reference: ArrayLike, current: ArrayLike) -> float:
    """One statistic of two histograms, as a float (nan if undefined)."""
    return float(STATISTICS[name](reference, current))


@dataclass(frozen=True)
class SizeCurve:
    """A value tabulated at window sizes (thresholds, floors), read at any size.

    Linear in log(n) between tabulated sizes; below the first size there is no
    value (the statistic is not reported there); above the last it stays at the
    last value. Tabulated thresholds fall with n, so holding the last one is the
    conservative side (fewer, never more, alerts).
    """

    sizes: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.values) or not self.sizes:
            raise ValueError("a size curve needs one value per size, and at least one size")
        if any(b <= a for a, b in zip(self.sizes, self.sizes[1:], strict=False)):
            raise ValueError("sizes must increase strictly")

    def at(self, n: float) -> float:
        if n < self.sizes[0] or not math.isfinite(n):
            return NAN
        return float(np.interp(math.log(n), np.log(self.sizes), self.values))

    @classmethod
    def from_json(cls, sizes: Sequence[int], values: Sequence[float]) -> SizeCurve:
        return cls(tuple(int(s) for s in sizes), tuple(float(v) for v in values))


def null_thresholds(
    reference_counts: ArrayLike,
    stat: Statistic,
    sizes: Sequence[int] = THRESHOLD_SIZES,
    *,
    alpha: float = 0.01,
    draws: int = 2_000,
    seed: int = 0,
) -> list[float]:
    """The `1 - alpha` quantile of `stat` between two samples of the reference, per size.

    Each draw samples a reference of the reference's own size and a window of
    size n from the same proportions (a parametric bootstrap of binned data,
    exact for these binned statistics): both sides' sampling error is in the
    null, so a large window of an unchanged stream does not alert because the
    reference itself is finite. The proportions of each draw come from the
    reference's Dirichlet posterior (NULL_PRIOR per bin), not the reference's
    shares as such: a bin the finite reference never saw may still hold values
    of an unchanged stream, and a reference all in one bin must not give a
    threshold of 0 that one such value exceeds.
    """
    counts = np.asarray(reference_counts, dtype=float)
    total = int(np.rint(counts.sum()))
    if total <= 0:
        raise ValueError("the reference histogram is empty")
    rng = np.random.default_rng(seed)
    out = []
    fn = STATISTICS[stat]
    for n in sizes:
        p = rng.dirichlet(counts + NULL_PRIOR, size=draws)
        ref = rng.multinomial(total, p)
        cur = rng.multinomial(int(n), p)
        values = np.asarray(fn(ref, cur), dtype=float)
        out.append(float(np.quantile(values, 1.0 - alpha)))
    return out


def thresholds_for(
    histograms: Mapping[str, ArrayLike],
    sizes: Sequence[int] = THRESHOLD_SIZES,
    *,
    alpha: float = 0.01,
    draws: int = 2_000,
    seed: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """`null_thresholds` for every statistic of every feature in `histograms` (counts)."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, counts in histograms.items():
        feature = FEATURES[name]
        out[name] = {
            s: null_thresholds(counts, s, sizes, alpha=alpha, draws=draws, seed=seed)
            for s in feature.statistics
        }
    return out


__all__ = [
    "FEATURES",
    "MIN_PER_BIN",
    "NULL_PRIOR",
    "PSI_PSEUDO_COUNT",
    "STATISTICS",
    "THRESHOLD_SIZES",
    "Feature",
    "SizeCurve",
    "Statistic",
    "chi2",
    "histogram",
    "ks_binned",
    "null_thresholds",
    "psi",
    "statistic",
    "thresholds_for",
]
