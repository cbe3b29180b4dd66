"""Paired champion/challenger comparison against hand and offline computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from spoiler_common.comparison import compare_paired, mcnemar

pytestmark = pytest.mark.unit


def _rows(n: int, seed: int, challenger_edge: float) -> tuple[np.ndarray, ...]:
    """Labels and two models' scores; the challenger separates the classes better."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    noise = rng.normal(0, 1, n)
    champ = 1 / (1 + np.exp(-(1.0 * (y * 2 - 1) + 1.5 * noise)))
    chall = 1 / (1 + np.exp(-((1.0 + challenger_edge) * (y * 2 - 1) + 1.5 * noise
                              + rng.normal(0, 0.5, n))))
    return y, np.round(champ, 3), np.round(chall, 3)  # rounded: ties in the AUC


def test_below_min_labels_is_none() -> None:
    y, a, b = _rows(40, 1, 0.5)
    assert compare_paired(y, a, b, 0.5, 0.5, min_labels=41) is None
    assert compare_paired(y, a, b, 0.5, 0.5, min_labels=40) is not None
    assert compare_paired([], [], [], 0.5, 0.5, min_labels=0) is None


def test_point_estimates_equal_sklearn() -> None:
    y, a, b = _rows(500, 2, 0.8)
    r = compare_paired(y, a, b, 0.4, 0.55, min_labels=30, draws=200)
    assert r is not None
    for got, scores, thr in ((r.champion, a, 0.4), (r.challenger, b, 0.55)):
        pred = scores >= thr
        assert got.accuracy == pytest.approx(accuracy_score(y, pred))
        assert got.f1 == pytest.approx(f1_score(y, pred))
        assert got.roc_auc == pytest.approx(roc_auc_score(y, scores))
    assert r.accuracy_diff.estimate == pytest.approx(r.challenger.accuracy - r.champion.accuracy)
    assert r.roc_auc_diff.estimate == pytest.approx(r.challenger.roc_auc - r.champion.roc_auc)
    assert r.agreement == pytest.approx(np.mean((a >= 0.4) == (b >= 0.55)))
    assert r.n == 500


def test_mcnemar_by_hand() -> None:
    # b=1, c=5, m=6: P(X<=1) = (1 + 6)/64 = 7/64; exact 14/64; mid-p 14/64 - 6/64 = 8/64
    mid, exact = mcnemar(1, 5)
    assert exact == pytest.approx(14 / 64)
    assert mid == pytest.approx(8 / 64)
    assert mcnemar(5, 1) == (mid, exact)
    assert mcnemar(0, 0) == (1.0, 1.0)
    assert mcnemar(3, 3) == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize(("b", "c"), [(0, 7), (12, 30), (400, 470), (2000, 2150)])
def test_mcnemar_exact_equals_scipy_binomial(b: int, c: int) -> None:
    mid, exact = mcnemar(b, c)
    m = b + c
    assert exact == pytest.approx(binomtest(min(b, c), m, 0.5).pvalue, rel=1e-9)
    # mid-p: exact minus the probability of the observed count (one half each side)
    from scipy.stats import binom
    assert mid == pytest.approx(exact - binom.pmf(min(b, c), m, 0.5), rel=1e-9)


def test_discordant_counts_and_verdict_from_rows() -> None:
    # 10 reviews, all spoilers. Champion right on 0-3, challenger right on 0-9.
    y = np.ones(10, dtype=bool)
    champ = np.array([0.9] * 4 + [0.1] * 6)
    chall = np.full(10, 0.9)
    r = compare_paired(y, champ, chall, 0.5, 0.5, min_labels=5, draws=100)
    assert r is not None
    assert (r.discordant_champion, r.discordant_challenger) == (0, 6)
    # m=6, k=0: exact 2/64, mid-p 1/64: significant at 0.05
    assert r.mcnemar_exact_p == pytest.approx(2 / 64)
    assert r.mcnemar_p == pytest.approx(1 / 64)
    assert r.verdict == "better"
    swapped = compare_paired(y, chall, champ, 0.5, 0.5, min_labels=5, draws=100)
    assert swapped is not None and swapped.verdict == "worse"
    # single class: ROC-AUC undefined, not 0.5
    assert math.isnan(r.champion.roc_auc) and math.isnan(r.roc_auc_diff.low)


def test_identical_models_have_no_verdict_and_zero_width_interval() -> None:
    y, a, _ = _rows(300, 3, 0.0)
    r = compare_paired(y, a, a, 0.5, 0.5, min_labels=30, draws=300)
    assert r is not None
    assert r.verdict == "none" and r.agreement == 1.0 and r.mcnemar_p == 1.0
    for metric in ("accuracy", "f1", "roc_auc"):
        iv = r.diff(metric)
        assert iv.estimate == 0.0 and iv.low == pytest.approx(0.0) and iv.high == pytest.approx(0.0)


def test_bootstrap_interval_equals_an_index_resampling_bootstrap() -> None:
    """Offline: resample row indices, score both models with sklearn, take quantiles."""
    y, a, b = _rows(200, 4, 0.6)
    draws = 400
    r = compare_paired(y, a, b, 0.5, 0.5, min_labels=30, draws=draws, seed=7)
    assert r is not None
    rng = np.random.default_rng(99)
    acc, auc = [], []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        acc.append(accuracy_score(y[i], b[i] >= 0.5) - accuracy_score(y[i], a[i] >= 0.5))
        auc.append(roc_auc_score(y[i], b[i]) - roc_auc_score(y[i], a[i]))
    # Different random draws: the limits agree within bootstrap noise (a few % of the width).
    for got, ref in ((r.accuracy_diff, acc), (r.roc_auc_diff, auc)):
        lo, hi = np.quantile(ref, [0.025, 0.975])
        width = hi - lo
        assert abs(got.low - lo) < 0.15 * width
        assert abs(got.high - hi) < 0.15 * width
        assert got.low < got.estimate < got.high


def test_weighted_bootstrap_equals_index_resampling_draw_for_draw() -> None:
    """A multinomial count vector and the indices it encodes give the same metrics."""
    from spoiler_common.comparison import _all_metrics

    y, a, b = _rows(120, 5, 0.4)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(y), (5, len(y)))
    w = np.stack([np.bincount(i, minlength=len(y)) for i in idx]).astype(float)
    got = _all_metrics(y, (a, b), (a >= 0.5, b >= 0.5), w)
    for d, i in enumerate(idx):
        for m, s in enumerate((a, b)):
            assert got[m, 0, d] == pytest.approx(accuracy_score(y[i], s[i] >= 0.5))
            assert got[m, 1, d] == pytest.approx(f1_score(y[i], s[i] >= 0.5))
            assert got[m, 2, d] == pytest.approx(roc_auc_score(y[i], s[i]))


def test_clearly_better_challenger_is_better_and_seeded() -> None:
    y, a, b = _rows(2000, 6, 1.5)
    r = compare_paired(y, a, b, 0.5, 0.5, min_labels=100)
    assert r is not None
    assert r.verdict == "better"
    assert r.accuracy_diff.excludes_zero and r.roc_auc_diff.low > 0
    assert compare_paired(y, a, b, 0.5, 0.5, min_labels=100) == r


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        compare_paired([1, 0], [0.1], [0.2, 0.3], 0.5, 0.5, min_labels=1)
    with pytest.raises(ValueError, match="alpha"):
        compare_paired([1], [0.1], [0.2], 0.5, 0.5, min_labels=1, alpha=0)
    with pytest.raises(ValueError, match="finite"):
        compare_paired([1], [float("nan")], [0.2], 0.5, 0.5, min_labels=1)
