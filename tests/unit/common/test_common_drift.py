"""The shared drift statistics and their null thresholds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spoiler_common import drift

pytestmark = pytest.mark.unit


def test_histogram_keeps_out_of_range_values_in_the_end_bins() -> None:
    counts = drift.histogram([-1, 0, 0.5, 1, 2, 5, float("nan")], [0, 1, 2])
    assert counts.tolist() == [3, 3]
    with pytest.raises(ValueError):
        drift.histogram([1], [1, 1])


def test_psi_is_zero_on_equal_proportions_whatever_the_sizes() -> None:
    assert drift.psi([50, 50], [5, 5]) == pytest.approx(0.0)
    assert drift.psi([50, 0, 50], [500, 0, 500]) == pytest.approx(0.0)


def test_psi_uses_the_same_pseudo_count_on_both_sides() -> None:
    ref, cur = np.array([30.0, 0.0, 10.0]), np.array([0.0, 0.0, 4.0])
    # The middle bin is empty on both sides and left out; 0.5 added to the rest.
    r = np.array([30.5, 10.5]) / 41.0
    c = np.array([0.5, 4.5]) / 5.0
    assert drift.psi(ref, cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))


def test_ks_and_chi2_by_hand() -> None:
    assert drift.ks_binned([1, 1], [2, 0]) == pytest.approx(0.5)
    # 2x2 table [[10, 30], [30, 10]]: expected 20 everywhere, chi2 = 4 * 100 / 20.
    assert drift.chi2([10, 30], [30, 10]) == pytest.approx(20.0)
    assert drift.chi2([10, 0, 20], [5, 0, 10]) == pytest.approx(0.0)


def test_statistics_are_nan_when_a_side_is_empty() -> None:
    for name in drift.STATISTICS:
        assert math.isnan(drift.statistic(name, [0, 0], [1, 2]))


def test_batched_statistics_equal_one_by_one() -> None:
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 50, size=(20, 6))
    cur = rng.integers(0, 50, size=(20, 6))
    for name, fn in drift.STATISTICS.items():
        batched = np.asarray(fn(ref + 1, cur + 1))
        single = [drift.statistic(name, r + 1, c + 1) for r, c in zip(ref, cur, strict=True)]
        assert batched == pytest.approx(single), name


def test_null_thresholds_fall_with_the_window_and_hold_their_false_alarm_rate() -> None:
    rng = np.random.default_rng(7)
    edges = drift.FEATURES["score"].edges
    ref = drift.histogram(rng.beta(2, 5, size=1_000), edges)
    sizes = (100, 1_000)
    thresholds = drift.null_thresholds(ref, "psi", sizes, draws=1_000, seed=1)
    assert thresholds[0] > thresholds[1] > 0
    # Fresh windows of the same distribution exceed the threshold about alpha of the time.
    for n, limit in zip(sizes, thresholds, strict=True):
        over = sum(drift.psi(ref, drift.histogram(rng.beta(2, 5, size=n), edges)) > limit
                   for _ in range(400))
        assert over / 400 < 0.05


def test_a_reference_in_one_bin_still_gets_a_positive_threshold() -> None:
    # 172 reviews, none with an unknown token. A world where 1 review in 1000 has one
    # is consistent with that reference (it sees none 84 % of the time): a window
    # of it must not alert, so the thresholds cannot be 0.
    ref = [172, 0, 0, 0, 0, 0, 0]
    rng = np.random.default_rng(4)
    for stat in ("psi", "ks", "chi2"):
        limits = drift.null_thresholds(ref, stat, (100, 1_000, 10_000), draws=1_000, seed=3)
        assert min(limits) > 0, stat
        over = 0
        for _ in range(200):
            cur = rng.multinomial(1_000, [0.999, 0.001, 0, 0, 0, 0, 0])
            over += drift.statistic(stat, ref, cur) > limits[1]
        assert over / 200 < 0.05, stat
    # ...while a real shift (a third of the reviews) still exceeds them by far.
    limit = drift.null_thresholds(ref, "ks", (1_000,), seed=3)[0]
    assert drift.ks_binned(ref, [667, 200, 133, 0, 0, 0, 0]) > 5 * limit


def test_shifted_window_exceeds_its_threshold() -> None:
    rng = np.random.default_rng(11)
    edges = drift.FEATURES["score"].edges
    ref = drift.histogram(rng.beta(2, 5, size=1_000), edges)
    limit = drift.null_thresholds(ref, "psi", (500,), seed=2)[0]
    shifted = drift.histogram(rng.beta(5, 2, size=500), edges)
    assert drift.psi(ref, shifted) > limit


def test_size_curve_interpolates_in_log_size_and_holds_the_last_value() -> None:
    curve = drift.SizeCurve((100, 10_000), (0.4, 0.2))
    assert math.isnan(curve.at(50))
    assert curve.at(100) == pytest.approx(0.4)
    assert curve.at(1_000) == pytest.approx(0.3)
    assert curve.at(1_000_000) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        drift.SizeCurve((100, 50), (0.1, 0.2))


def test_every_feature_has_a_minimum_tied_to_its_bins() -> None:
    for feature in drift.FEATURES.values():
        assert feature.min_sample >= drift.MIN_PER_BIN * feature.bins
        assert set(feature.statistics) <= set(drift.STATISTICS)
