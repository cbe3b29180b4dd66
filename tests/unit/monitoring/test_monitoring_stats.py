"""Metric math against values computed by hand (see the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitoring import stats

pytestmark = pytest.mark.unit


def test_histogram_clips_out_of_range_into_end_bins_and_drops_nan() -> None:
    counts = stats.histogram([-1, 0, 0.5, 1, 2, 5, float("nan")], [0, 1, 2])
    assert counts.tolist() == [3, 3]


def test_histogram_rejects_bad_edges() -> None:
    with pytest.raises(ValueError):
        stats.histogram([1], [1, 1])


def test_psi_by_hand() -> None:
    # p_ref = (.5, .5), p_cur = (.8, .2): .3 ln(1.6) + (-.3) ln(.4) = .3 ln 4
    assert stats.psi([50, 50], [80, 20]) == pytest.approx(0.3 * math.log(4))


def test_psi_identical_is_zero_and_empty_bin_is_floored() -> None:
    assert stats.psi([1, 2, 3], [10, 20, 30]) == pytest.approx(0.0)
    # cur = (1, 0): the empty bin is floored at half an observation, 0.5 / 7; ref = (.5, .5)
    f = 0.5 / 7
    want = (1 - 0.5) * math.log(1 / 0.5) + (f - 0.5) * math.log(f / 0.5)
    assert stats.psi([5, 5], [7, 0]) == pytest.approx(want)
    # with many observations the floor is PSI_EPS
    big = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert stats.psi([5, 5], [10_000, 0]) == pytest.approx(big)


def test_psi_empty_window_is_nan_not_zero() -> None:
    assert math.isnan(stats.psi([5, 5], [0, 0]))
    assert math.isnan(stats.psi([0, 0], [5, 5]))


def test_psi_rejects_mismatched_bins() -> None:
    with pytest.raises(ValueError):
        stats.psi([1, 1], [1, 1, 1])


def test_ks_binned_by_hand() -> None:
    # CDFs at the inner edge: .5 vs .8 -> .3; at the end both 1.
    assert stats.ks_binned([50, 50], [80, 20]) == pytest.approx(0.3)
    assert math.isnan(stats.ks_binned([1, 1], [0, 0]))


def test_ks_2samp_by_hand() -> None:
    # F_a - F_b at 1, 2, 3, 4: 1/3, 2/3-1/4, 1-1/2, 1-3/4 -> max 1/2
    assert stats.ks_2samp([1, 2, 3], [2, 3, 4, 5]) == pytest.approx(0.5)
    assert stats.ks_2samp([1, 2], [1, 2]) == 0.0
    assert math.isnan(stats.ks_2samp([], [1.0]))


def test_confusion_and_metrics_by_hand() -> None:
    c = stats.confusion([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 1, 1, 1)
    m = stats.classification_metrics(c)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)


def test_metrics_of_empty_window_are_nan() -> None:
    m = stats.classification_metrics(stats.confusion([], []))
    assert all(math.isnan(v) for v in m.values())


def test_metrics_below_min_labelled_are_nan() -> None:
    c = stats.confusion([1, 0, 1], [1, 0, 1])
    assert all(math.isnan(v) for v in stats.classification_metrics(c, min_labelled=4).values())


def test_one_class_window_reports_accuracy_but_not_recall_or_f1() -> None:
    # All actual negatives, all predicted negative: accuracy 1 is true, but recall
    # and F1 of the spoiler class are undefined, not 0 or 1.
    c = stats.confusion([0, 0, 0, 0], [0, 0, 0, 0])
    m = stats.classification_metrics(c)
    assert m["accuracy"] == 1.0
    assert math.isnan(m["precision"]) and math.isnan(m["recall"]) and math.isnan(m["f1"])


def test_min_class_gates_precision_and_recall() -> None:
    c = stats.Confusion(tp=1, fp=0, tn=10, fn=3)  # 1 predicted positive, 4 actual
    m = stats.classification_metrics(c, min_class=2)
    assert math.isnan(m["precision"])
    assert m["recall"] == pytest.approx(0.25)
    assert math.isnan(m["f1"])


def test_f1_is_zero_when_there_are_positives_but_no_hits() -> None:
    c = stats.Confusion(tp=0, fp=2, tn=0, fn=2)
    assert stats.classification_metrics(c)["f1"] == 0.0


def test_roc_auc_by_hand() -> None:
    # pos {.9, .4} vs neg {.6, .1}: 3 of 4 pairs ordered right
    assert stats.roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1]) == pytest.approx(0.75)
    # a tie counts one half
    assert stats.roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert stats.roc_auc([1, 1, 0], [0.7, 0.7, 0.7]) == pytest.approx(0.5)


def test_roc_auc_matches_pairwise_definition_on_random_data() -> None:
    rng = np.random.default_rng(7)
    y = rng.random(200) < 0.3
    s = np.round(rng.random(200), 1)  # many ties
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert stats.roc_auc(y, s) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_roc_auc_one_class_or_empty_is_nan() -> None:
    assert math.isnan(stats.roc_auc([1, 1, 1], [0.1, 0.5, 0.9]))
    assert math.isnan(stats.roc_auc([], []))
    assert math.isnan(stats.roc_auc([1, 0, 0], [0.9, 0.1, 0.2], min_class=2))


def test_cbpe_by_hand() -> None:
    # predicted (T, F, T); TP = .9 + .6, FP = .1 + .4, FN = .2, TN = .8
    e = stats.cbpe([0.9, 0.2, 0.6], 0.5)
    assert (e.tp, e.fp, e.fn, e.tn) == pytest.approx((1.5, 0.5, 0.2, 0.8))
    assert e.accuracy == pytest.approx(2.3 / 3)
    assert e.precision == pytest.approx(0.75)
    assert e.recall == pytest.approx(1.5 / 1.7)
    assert e.f1 == pytest.approx(3 / 3.7)


def test_cbpe_empty_is_nan_and_calibration_is_applied() -> None:
    assert math.isnan(stats.cbpe([], 0.5).accuracy)
    # binning map pulls every 0.9 down to 0.6: a predicted spoiler is right 60% of the time
    cal = stats.Calibration(method="binning", x=(0.0, 0.9, 1.0), y=(0.0, 0.6, 1.0))
    assert stats.cbpe([0.9, 0.9], 0.5, cal).accuracy == pytest.approx(0.6)
    # temperature 1 and platt (1, 0) are the identity
    for c in (stats.Calibration("temperature", t=1.0), stats.Calibration("platt")):
        assert stats.cbpe([0.9, 0.2], 0.5, c).accuracy == pytest.approx((0.9 + 0.8) / 2)


def test_cbpe_is_unbiased_on_calibrated_scores() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(20000)
    y = rng.random(20000) < p
    est = stats.cbpe(p, 0.5).accuracy
    real = np.mean((p >= 0.5) == y)
    assert est == pytest.approx(real, abs=0.01)


def test_quantiles_by_hand() -> None:
    assert stats.quantiles([4, 1, 3, 2], [0.5, 0.95]) == pytest.approx([2.5, 3.85])
    assert all(math.isnan(v) for v in stats.quantiles([1.0], [0.5], min_count=2))
    assert all(math.isnan(v) for v in stats.quantiles([], [0.5]))
