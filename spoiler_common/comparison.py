"""Champion vs challenger on the same labelled reviews: paired metrics and tests.

One definition shared by the monitor (live windows from PostgreSQL) and by
training (the promotion policy and the retrain report), pure numpy so the
runtime services need nothing more.

Both models scored the *same* reviews, so every comparison here is paired:

- **Differences with confidence intervals** (challenger − champion) of accuracy,
  F1 of the spoiler class and ROC-AUC, by the paired bootstrap: one resample of
  the reviews serves both models, so the review-to-review variation they share
  cancels and the interval is far narrower than two independent ones. A resample
  is drawn as multinomial counts (how often each review is drawn), which makes
  every statistic a weighted sum over the original rows: ROC-AUC needs one sort
  per model, not one per draw.
- **McNemar's test** on accuracy: only the discordant reviews (one model right,
  the other wrong) carry evidence; under "equally accurate" each is the
  challenger's with probability 1/2. The p-value is the exact binomial one and
  its mid-p version (the observed count weighted one half, see :func:`mcnemar`),
  which keeps the test's size near alpha where the exact one is conservative
  (Fagerland, Lydersen & Laake 2013). The verdict uses the mid-p value.
- **Agreement**: the share of reviews both models label the same.

The verdict is one test on one metric (accuracy, McNemar mid-p at ``alpha``)
so that a policy acting on it has the error rate it asks for; testing three
metrics and taking any would not. The intervals of F1 and ROC-AUC are there to
read beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Verdict = Literal["better", "worse", "none"]
NAN = float("nan")
METRICS: tuple[str, ...] = ("accuracy", "f1", "roc_auc")
# Bootstrap draws by default: 2,000 puts the 2.5 % and 97.5 % quantiles within
# about ±0.1 standard errors of their limit.
DEFAULT_DRAWS = 2_000
DEFAULT_SEED = 15
# Draws resampled at once: bounds memory at about CHUNK x n floats.
_CHUNK = 250


@dataclass(frozen=True)
class Interval:
    """A point estimate of challenger − champion with its paired-bootstrap interval."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class ModelMetrics:
    """One model's metrics on the compared reviews (nan where undefined)."""

    accuracy: float
    f1: float
    roc_auc: float


@dataclass(frozen=True)
class PairedComparison:
    """Champion and challenger on the same ``n`` labelled reviews.

    ``discordant_champion``: reviews only the champion labelled right;
    ``discordant_challenger``: only the challenger. ``mcnemar_p`` is the mid-p
    value the verdict uses, ``mcnemar_exact_p`` the (conservative) exact one.
    """

    n: int
    alpha: float
    draws: int
    champion: ModelMetrics
    challenger: ModelMetrics
    accuracy_diff: Interval
    f1_diff: Interval
    roc_auc_diff: Interval
    agreement: float
    discordant_champion: int
    discordant_challenger: int
    mcnemar_p: float
    mcnemar_exact_p: float
    verdict: Verdict

    def diff(self, metric: str) -> Interval:
        """The interval of `metric` (one of :data:`METRICS`)."""
        if metric not in METRICS:
            raise KeyError(f"unknown metric {metric!r}; one of {METRICS}")
        interval: Interval = getattr(self, f"{metric}_diff")
        return interval

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values (nan stays nan: callers decide how to show it)."""
        return asdict(self)


def mcnemar(champion_only: int, challenger_only: int) -> tuple[float, float]:
    """Two-sided McNemar p-values ``(mid_p, exact_p)`` from the discordant counts.

    With ``m = b + c`` discordant reviews and ``k = min(b, c)``, the exact p is
    ``min(1, 2 P(X <= k))`` for X ~ Binomial(m, 1/2) and the mid-p is
    ``2 P(X <= k) - P(X = k)`` (the observed count counted half on each side).
    Both are 1 when there is no discordant review.
    """
    b, c = int(champion_only), int(challenger_only)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b} and {c}")
    m, k = b + c, min(b, c)
    if m == 0:
        return 1.0, 1.0
    # log-space pmf: exact for the thousands of discordant reviews a long window has.
    log_half_m = m * math.log(0.5)
    pmf = [math.exp(_log_comb(m, i) + log_half_m) for i in range(k + 1)]
    tail = math.fsum(pmf)
    exact = min(1.0, 2.0 * tail)
    mid = min(1.0, 2.0 * tail - pmf[k])
    return mid, exact


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _weighted_auc(
    y: NDArray[np.bool_], scores: NDArray[np.float64], w: NDArray[np.float64]
) -> NDArray[np.float64]:
    """ROC-AUC (ties one half) for each row of weights `w`: Mann–Whitney, weighted.

    AUC = sum over spoilers i of w_i (W_neg(s < s_i) + W_neg(s = s_i) / 2) / (W_pos W_neg):
    the non-spoilers' weights are summed cumulatively in score order once per draw,
    and each spoiler reads its place in that sum (found once, by binary search).
    """
    neg_scores = np.sort(scores[~y], kind="mergesort")
    w_pos, w_neg = w[:, y], w[:, ~y][:, np.argsort(scores[~y], kind="mergesort")]
    cum = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w_neg, axis=1)], axis=1)
    below = np.searchsorted(neg_scores, scores[y], side="left")
    upto = np.searchsorted(neg_scores, scores[y], side="right")
    wins = cum[:, below] + (cum[:, upto] - cum[:, below]) / 2
    p_tot, n_tot = w_pos.sum(axis=1), cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (w_pos * wins).sum(axis=1) / (p_tot * n_tot)
    return np.where((p_tot > 0) & (n_tot > 0), auc, NAN)


def _all_metrics(
    y: NDArray[np.bool_],
    scores: tuple[NDArray[np.float64], NDArray[np.float64]],
    preds: tuple[NDArray[np.bool_], NDArray[np.bool_]],
    w: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Array (model, metric, draw) of both models' metrics under each weight row."""
    # Weighted counts as one matrix product: per model, correct / TP / FP / FN.
    columns = [
        col for pred in preds for col in (y == pred, y & pred, ~y & pred, y & ~pred)
    ]
    counts = w @ np.stack(columns, axis=1).astype(float)
    total = w.sum(axis=1)
    out = np.empty((2, len(METRICS), w.shape[0]))
    for i in range(2):
        correct, tp, fp, fn = counts[:, 4 * i:4 * i + 4].T
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i, 0] = correct / total
            # F1 of the spoiler class is undefined without actual spoilers (0/0, or a
            # meaningless 0); with them it is 2TP / (2TP + FP + FN), 0 when none is found.
            out[i, 1] = np.where(tp + fn > 0, 2 * tp / (2 * tp + fp + fn), NAN)
        out[i, 2] = _weighted_auc(y, scores[i], w)
    return out


def _interval(estimate: float, draws: NDArray[np.float64], alpha: float) -> Interval:
    finite = draws[np.isfinite(draws)]
    # Percentile interval; undefined when the point estimate is, or when too few
    # resamples define the statistic (a rare class missing from most of them).
    if not math.isfinite(estimate) or len(finite) < max(10, len(draws) // 2):
        return Interval(estimate, NAN, NAN)
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate, float(low), float(high))


def compare_paired(
    labels: ArrayLike,
    champion_scores: ArrayLike,
    challenger_scores: ArrayLike,
    champion_threshold: float,
    challenger_threshold: float,
    *,
    min_labels: int,
    alpha: float = 0.05,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> PairedComparison | None:
    """Compare two models' calibrated scores on the same labelled reviews.

    `labels` are the true classes (True = spoiler) row by row with both models'
    `spoiler_probability`; each model labels a review a spoiler when its score is
    ``>= `` its own threshold (as the runtime does). Returns None with fewer than
    `min_labels` rows: a comparison on too few labels is not reported at all.
    The bootstrap is seeded, so the same rows give the same intervals.
    """
    y = np.asarray(labels, dtype=bool).ravel()
    s_champ = np.asarray(champion_scores, dtype=float).ravel()
    s_chall = np.asarray(challenger_scores, dtype=float).ravel()
    if not (y.shape == s_champ.shape == s_chall.shape):
        raise ValueError(
            f"labels and scores differ in length: {y.shape}, {s_champ.shape}, {s_chall.shape}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if not (np.all(np.isfinite(s_champ)) and np.all(np.isfinite(s_chall))):
        raise ValueError("scores must be finite numbers")
    n = len(y)
    if n < max(1, min_labels):
        return None

    p_champ, p_chall = s_champ >= champion_threshold, s_chall >= challenger_threshold
    scores, preds = (s_champ, s_chall), (p_champ, p_chall)
    point = _all_metrics(y, scores, preds, np.ones((1, n)))[:, :, 0]

    rng = np.random.default_rng(seed)
    boot = np.empty((2, len(METRICS), draws))
    for start in range(0, draws, _CHUNK):
        size = min(_CHUNK, draws - start)
        # n indices a draw, counted per row: the multinomial counts, faster than
        # rng.multinomial over n categories.
        rows = rng.integers(0, n, (size, n)) + np.arange(size)[:, None] * n
        w = np.bincount(rows.ravel(), minlength=size * n).reshape(size, n).astype(float)
        boot[:, :, start:start + size] = _all_metrics(y, scores, preds, w)
    diffs = boot[1] - boot[0]

    intervals = [
        _interval(float(point[1, j] - point[0, j]), diffs[j], alpha) for j in range(len(METRICS))
    ]
    right_champ, right_chall = p_champ == y, p_chall == y
    b = int(np.sum(right_champ & ~right_chall))
    c = int(np.sum(~right_champ & right_chall))
    mid_p, exact_p = mcnemar(b, c)
    verdict: Verdict = "none"
    if mid_p < alpha and b != c:
        verdict = "better" if c > b else "worse"
    return PairedComparison(
        n=n,
        alpha=alpha,
        draws=draws,
        champion=ModelMetrics(*(float(v) for v in point[0])),
        challenger=ModelMetrics(*(float(v) for v in point[1])),
        accuracy_diff=intervals[0],
        f1_diff=intervals[1],
        roc_auc_diff=intervals[2],
        agreement=float(np.mean(p_champ == p_chall)),
        discordant_champion=b,
        discordant_challenger=c,
        mcnemar_p=mid_p,
        mcnemar_exact_p=exact_p,
        verdict=verdict,
    )


__all__ = [
    "DEFAULT_DRAWS",
    "DEFAULT_SEED",
    "METRICS",
    "Interval",
    "ModelMetrics",
    "PairedComparison",
    "Verdict",
    "compare_paired",
    "mcnemar",
]
