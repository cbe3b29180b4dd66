"""Metric math against values computed by hand (see the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitoring import stats

pytestmark = pytest.mark.unit


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
    e = stats.cbpe([0.9, 0.2, 0.6], [True, False, True])
    assert (e.tp, e.fp, e.fn, e.tn) == pytest.approx((1.5, 0.5, 0.2, 0.8))
    assert e.accuracy == pytest.approx(2.3 / 3)
    assert e.precision == pytest.approx(0.75)
    assert e.recall == pytest.approx(1.5 / 1.7)
    assert e.f1 == pytest.approx(3 / 3.7)
    # Realised accuracy is a mean of Bernoulli(q), q = .9, .8, .6: variance sum q(1-q) / 9.
    assert e.accuracy_se == pytest.approx(math.sqrt(0.09 + 0.16 + 0.24) / 3)


def test_cbpe_uses_the_decisions_made_not_a_threshold() -> None:
    # A score of .7 predicted "no spoiler" (another threshold then) is right with 1 - .7.
    assert stats.cbpe([0.7], [False]).accuracy == pytest.approx(0.3)


def test_cbpe_empty_is_nan_and_lengths_must_match() -> None:
    e = stats.cbpe([], [])
    assert math.isnan(e.accuracy) and math.isnan(e.accuracy_se) and math.isnan(e.f1_se)
    with pytest.raises(ValueError):
        stats.cbpe([0.5, 0.5], [True])


def test_cbpe_is_unbiased_on_calibrated_scores() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(20000)
    y = rng.random(20000) < p
    est = stats.cbpe(p, p >= 0.5).accuracy
    real = np.mean((p >= 0.5) == y)
    assert est == pytest.approx(real, abs=0.01)


def test_cbpe_standard_errors_match_the_spread_of_realised_metrics() -> None:
    # Labels drawn from the (calibrated) probabilities many times: the realised accuracy
    # and F1 scatter around the estimate by the standard errors cbpe reports.
    rng = np.random.default_rng(5)
    p = rng.beta(1.2, 3.0, 400)
    predicted = p >= 0.35
    est = stats.cbpe(p, predicted)
    accs, f1s = [], []
    for _ in range(3000):
        c = stats.confusion(rng.random(400) < p, predicted)
        m = stats.classification_metrics(c)
        accs.append(m["accuracy"])
        f1s.append(m["f1"])
    assert np.std(accs) == pytest.approx(est.accuracy_se, rel=0.08)
    assert np.std(f1s) == pytest.approx(est.f1_se, rel=0.1)
    assert np.mean(accs) == pytest.approx(est.accuracy, abs=0.003)
    assert np.mean(f1s) == pytest.approx(est.f1, abs=0.01)


def test_estimate_limits_hold_on_calibrated_scores_and_catch_a_shifted_level() -> None:
    # Labels drawn from the scores themselves: the gaps stay inside their limits (z = 3)
    # nearly always. Labels drawn from scores 0.1 lower than the model's (a level the
    # test split ruled out, level error 0.03): the F1 gap leaves its limit.
    rng = np.random.default_rng(11)
    n = 20_000
    p = rng.beta(1.2, 3.0, n)
    predicted = p >= 0.3
    acc_limit, f1_limit = stats.estimate_error_limits(p, predicted, 0.01, 0.03, 3.0)
    est = stats.cbpe(p, predicted)
    outside = {"accuracy": 0, "f1": 0, "shifted_f1": 0}
    for _ in range(300):
        for truth, prefix in ((p, ""), (np.clip(p - 0.1, 0, 1), "shifted_")):
            m = stats.classification_metrics(stats.confusion(rng.random(n) < truth,
                                                             predicted))
            if not prefix:
                outside["accuracy"] += abs(est.accuracy - m["accuracy"]) > acc_limit
            outside[f"{prefix}f1"] += abs(est.f1 - m["f1"]) > f1_limit
    assert outside["accuracy"] <= 3 and outside["f1"] <= 3, outside
    assert outside["shifted_f1"] >= 290, outside


def test_estimate_limits_feel_the_level_when_predictions_are_one_class() -> None:
    # Every prediction "spoiler": a level error moves the estimated accuracy one for one
    # (nothing cancels), so the limit is at least the level error, whatever the ECE.
    p = np.full(1000, 0.3)
    acc_limit, _ = stats.estimate_error_limits(p, np.ones(1000, bool), 0.0, 0.05, 3.0)
    assert acc_limit == pytest.approx(0.05 + 3 * math.sqrt(0.21 / 1000))
    # Half and half at .3 / .7: the level's shifts cancel and the ECE is the larger term.
    half = np.r_[np.full(500, 0.3), np.full(500, 0.7)]
    acc_limit, _ = stats.estimate_error_limits(half, half > 0.5, 0.02, 0.05, 3.0)
    assert acc_limit == pytest.approx(0.02 + 3 * math.sqrt(0.21 / 1000))


def test_proportion_se_by_hand() -> None:
    # p = .2 on a window of 100 and a test split of 400: sqrt(.16 * (1/100 + 1/400)).
    assert stats.proportion_se(0.2, 100, 400) == pytest.approx(math.sqrt(0.16 * 0.0125))
    assert math.isnan(stats.proportion_se(0.2, 0))
    assert math.isnan(stats.proportion_se(1.5, 10))


def test_quantiles_by_hand() -> None:
    assert stats.quantiles([4, 1, 3, 2], [0.5, 0.95]) == pytest.approx([2.5, 3.85])
    assert all(math.isnan(v) for v in stats.quantiles([1.0], [0.5], min_count=2))
    assert all(math.isnan(v) for v in stats.quantiles([], [0.5]))
