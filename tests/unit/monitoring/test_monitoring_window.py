"""Window computation: minimum counts give absent series, values match the math."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from monitoring import reference, stats
from monitoring.exporter import METRICS, SnapshotCollector
from monitoring.window import MinCounts, Rows, compute, empty_rows, reference_samples
from spoiler_common import drift

pytestmark = pytest.mark.unit

NOW = 1_000_000.0
SIZES = [30, 100, 1000]


def hist(name: str, values: Sequence[float]) -> dict[str, list[float]]:
    edges = drift.FEATURES[name].edges
    return {"edges": list(edges), "counts": drift.histogram(values, edges).tolist()}


def meta(**changes: object) -> dict[str, object]:
    """A format-2 bundle.json (docs/architecture.md) with easy numbers."""
    base: dict[str, object] = {
        "format_version": 2, "name": "tiny", "version": "v1", "threshold": 0.5,
        "created_at": "2026-01-01T00:00:00Z", "base_model": "tiny:distilbert",
        "max_length": 128, "files": {}, "training_spoiler_rate": 0.25,
        "confusion_matrix": [[60, 15], [10, 15]],  # 30 of 100 predicted spoilers
        "metrics": {"accuracy": 0.75, "f1_spoiler": 0.55, "ece": 0.02, "n": 100,
                    "roc_auc": 0.8, "pr_auc": 0.6, "macro_f1": 0.7, "brier": 0.17,
                    "precision_spoiler": 0.5, "recall_spoiler": 0.6, "spoiler_rate": 0.25},
        "calibration": {"method": "platt", "params": {"a": 1.0, "b": 0.0}},
        "reference": {"source": "validation", "n": 100, "features": {
            "score": hist("score", [0.1] * 75 + [0.9] * 25),
            "text_words": hist("text_words", [30] * 10 + [60] * 60 + [500] * 30),
            "rating": hist("rating", [8] * 50 + [3] * 50),
            "unknown_token_share": hist("unknown_token_share", [0.0] * 90 + [0.07] * 10),
            "empty_summary": hist("empty_summary", [0.0] * 90 + [1.0] * 10),
        }},
        "drift_thresholds": {"alpha": 0.001, "family_alpha": 0.01, "statistics": 7,
                             "draws": 2000, "method": "bootstrap", "sizes": SIZES, "features": {
            "score": {"psi": [0.5, 0.3, 0.1], "ks": [0.4, 0.2, 0.1]},
            "text_words": {"psi": [0.6, 0.4, 0.2], "ks": [0.4, 0.2, 0.1]},
            "rating": {"chi2": [20.0, 20.0, 20.0]},
            "unknown_token_share": {"psi": [0.5, 0.3, 0.1], "ks": [0.4, 0.2, 0.1]},
            "empty_summary": {"chi2": [9.0, 9.0, 9.0]},
        }},
        "quality_floors": {"z": 3.0, "source": "test", "n": 100, "sizes": SIZES, "metrics": {
            "accuracy": {"expected": 0.75, "floor": [0.5, 0.55, 0.6]},
            "f1_spoiler": {"expected": 0.55, "floor": [0.2, 0.3, 0.4]},
        }},
    }
    base.update(changes)
    return base


META = meta()


def rows(n: int, *, labelled: int = 0, positive_every: int = 2, age: float = 10.0) -> Rows:
    idx = np.arange(n)
    prob = np.where(idx % positive_every == 0, 0.9, 0.1)
    actual = np.full(n, np.nan)
    actual[:labelled] = (idx[:labelled] % positive_every == 0).astype(float)
    labelled_at = np.full(n, np.nan)
    labelled_at[:labelled] = NOW - 1.0
    return Rows(
        predicted_at=np.full(n, NOW - age), produced_at=np.full(n, NOW - age - 1),
        probability=prob, predicted=prob >= 0.5, threshold=np.full(n, 0.5),
        input_tokens=np.full(n, 100.0), unknown_tokens=np.full(n, 2.0),
        text_words=np.full(n, 70.0), rating=np.full(n, 8.0),
        summary_empty=np.zeros(n), actual=actual, labelled_at=labelled_at,
    )


def by_name(samples: list, name: str, **labels: str) -> list[float]:
    return [s.value for s in samples if s.name == name
            and all(s.labels.get(k) == v for k, v in labels.items())]


def test_reference_reads_features_thresholds_and_floors() -> None:
    ref = reference.parse(META)
    assert set(ref.histograms) == set(drift.FEATURES)
    assert ref.histograms["empty_summary"].shares().tolist() == pytest.approx([0.9, 0.1])
    assert ref.training_spoiler_rate == 0.25
    assert ref.calibration == "platt"
    # Read at n on a log-n scale between the tabulated sizes; none below the first size.
    assert ref.threshold_at("score", "psi", 100) == pytest.approx(0.3)
    assert ref.threshold_at("score", "psi", math.sqrt(100 * 1000)) == pytest.approx(0.2)
    assert math.isnan(ref.threshold_at("score", "psi", 29))
    assert math.isnan(ref.threshold_at("rating", "psi", 100))  # rating has chi2 only
    assert ref.floors["f1"].expected == 0.55 and ref.floors["f1"].floor.at(1000) == 0.4
    assert ref.predicted_spoiler_ratio == pytest.approx(0.3) and ref.test_n == 100
    assert ref.calibration_error == 0.02 and ref.z == 3.0
    # The {tn, fp, fn, tp} form current packaging writes reads the same.
    cells = reference.parse(meta(confusion_matrix={"tn": 60, "fp": 15, "fn": 10, "tp": 15}))
    assert cells.predicted_spoiler_ratio == pytest.approx(0.3) and cells.test_n == 100
    assert reference.parse(meta(confusion_matrix=None)).predicted_spoiler_ratio is None


def test_format_1_is_refused_with_what_to_do() -> None:
    with pytest.raises(reference.ReferenceError_, match=r"format_version 1.*rebuild the bundle"):
        reference.parse({**META, "format_version": 1})
    with pytest.raises(reference.ReferenceError_, match="rebuild the bundle"):
        reference.parse({"name": "x"})


def test_a_feature_the_data_lacks_is_absent() -> None:
    features = dict(META["reference"]["features"])  # type: ignore[index]
    del features["rating"]
    ref = reference.parse(meta(reference={"source": "validation", "n": 100,
                                          "features": features}))
    assert "rating" not in ref.histograms and "score" in ref.histograms
    samples = compute(rows(200), NOW, "5m", 300, "v1", ref, MinCounts())
    assert by_name(samples, "spoiler_drift_chi2", feature="rating") == []


def test_reference_rejects_other_bins_and_malformed_blocks() -> None:
    features = dict(META["reference"]["features"])  # type: ignore[index]
    features["score"] = {"edges": [0.0, 0.5, 1.0], "counts": [75, 25]}
    with pytest.raises(reference.ReferenceError_, match=r"differ from spoiler_common\.drift"):
        reference.parse(meta(reference={"source": "validation", "n": 100,
                                        "features": features}))
    bad_thresholds = {**META["drift_thresholds"],  # type: ignore[dict-item]
                      "features": {"score": {"psi": [0.5, 0.3]}}}
    with pytest.raises(reference.ReferenceError_, match="2 values for 3 sizes"):
        reference.parse(meta(drift_thresholds=bad_thresholds))
    with pytest.raises(reference.ReferenceError_, match="quality_floors"):
        reference.parse({k: v for k, v in META.items() if k != "quality_floors"})


def test_missing_threshold_reports_the_statistic_without_one() -> None:
    ref = reference.parse(meta(drift_thresholds={
        **META["drift_thresholds"], "features": {}}))  # type: ignore[dict-item]
    samples = compute(rows(200), NOW, "5m", 300, "v1", ref, MinCounts())
    assert by_name(samples, "spoiler_drift_psi", feature="score")
    assert by_name(samples, "spoiler_drift_threshold") == []


def test_empty_window_reports_counts_only() -> None:
    ref = reference.parse(META)
    samples = compute(empty_rows(), NOW, "5m", 300, "v1", ref, MinCounts())
    names = {s.name for s in samples}
    assert names == {"spoiler_model_predictions", "spoiler_model_labelled",
                     "spoiler_model_confusion"}
    assert by_name(samples, "spoiler_model_predictions") == [0]


def test_small_window_has_no_accuracy_or_drift() -> None:
    ref = reference.parse(META)
    samples = compute(rows(20, labelled=20), NOW, "5m", 300, "v1", ref, MinCounts())
    assert by_name(samples, "spoiler_model_labelled") == [20]
    for absent in ("spoiler_model_accuracy", "spoiler_model_f1", "spoiler_drift_psi",
                   "spoiler_model_estimated_accuracy", "spoiler_model_quality_floor"):
        assert by_name(samples, absent) == [], absent
    assert by_name(samples, "spoiler_model_label_delay_seconds", quantile="0.5") == [10.0]


def test_full_window_values() -> None:
    ref = reference.parse(META)
    samples = compute(rows(100, labelled=60), NOW, "5m", 300, "v1", ref, MinCounts())
    # Predictions equal labels on the labelled 60: perfect metrics, 30 of each class.
    assert by_name(samples, "spoiler_model_accuracy") == [1.0]
    assert by_name(samples, "spoiler_model_f1") == [1.0]
    assert by_name(samples, "spoiler_model_roc_auc") == [1.0]
    assert by_name(samples, "spoiler_model_confusion", cell="tp") == [30]
    assert by_name(samples, "spoiler_model_labelled_fraction") == [0.6]
    assert by_name(samples, "spoiler_model_predicted_spoiler_ratio") == [0.5]
    # CBPE: every prediction is right with probability 0.9.
    assert by_name(samples, "spoiler_model_estimated_accuracy") == pytest.approx([0.9])
    assert by_name(samples, "spoiler_model_estimated_accuracy_error") == pytest.approx([-0.1])
    # Its limit: the test split's ECE plus 3 standard errors of 60 Bernoulli(.9).
    assert by_name(samples, "spoiler_model_estimated_accuracy_error_limit") == pytest.approx(
        [0.02 + 3 * math.sqrt(0.09 / 60)])
    # F1's limit: the calibration's level is known to 3 standard errors of the test split's
    # spoiler share (100 reviews at .25: 0.1299, more than its ECE). Moved down by that, the
    # 30 predicted spoilers have p = .77 and the rest 0: expected F1 46.2 / 53.1 instead of
    # .9 (moved up, p clips at 1: a smaller change). Plus 3 standard errors of the F1.
    level = 3 * math.sqrt(0.25 * 0.75 / 100)
    f1_se = stats.cbpe([0.9] * 30 + [0.1] * 30, [True] * 30 + [False] * 30).f1_se
    assert by_name(samples, "spoiler_model_estimated_f1_error_limit") == pytest.approx(
        [0.9 - 2 * 30 * (0.9 - level) / (2 * 30 * (0.9 - level) + 30 * (0.1 + level))
         + 3 * f1_se])
    # Floors at the labelled n (60) and, for the estimate, at the prediction n (100).
    curve = drift.SizeCurve((30, 100, 1000), (0.5, 0.55, 0.6))
    assert by_name(samples, "spoiler_model_quality_floor", metric="accuracy") == pytest.approx(
        [curve.at(60)])
    assert by_name(samples, "spoiler_model_quality_floor",
                   metric="estimated_accuracy") == pytest.approx([0.55])
    f1_floor = drift.SizeCurve((30, 100, 1000), (0.2, 0.3, 0.4)).at(60)
    assert by_name(samples, "spoiler_model_quality_floor", metric="f1") == pytest.approx(
        [f1_floor])
    # Predicted spoilers: expected 30 % (test split of 100), window of 100: 3 SE of both.
    assert by_name(samples, "spoiler_model_predicted_spoiler_ratio_tolerance") == pytest.approx(
        [3 * math.sqrt(0.21 * (1 / 100 + 1 / 100))])
    # Score shares (.5, .5) vs reference (.75, .25) in the same two bins: the shared PSI.
    ref_counts = ref.histograms["score"].counts
    current = drift.histogram(np.where(np.arange(100) % 2 == 0, 0.9, 0.1),
                              drift.FEATURES["score"].edges)
    assert by_name(samples, "spoiler_drift_psi", feature="score") == pytest.approx(
        [drift.psi(ref_counts, current)])
    assert by_name(samples, "spoiler_drift_ks", feature="score") == pytest.approx([0.25])
    assert by_name(samples, "spoiler_drift_threshold", feature="score",
                   statistic="psi") == pytest.approx([0.3])
    assert by_name(samples, "spoiler_drift_sample_size", feature="score") == [100]
    # Categorical features get chi-squared, ordered ones PSI and KS, never the other.
    assert by_name(samples, "spoiler_drift_chi2", feature="rating") == pytest.approx(
        [drift.chi2([0, 0, 50, 0, 0, 0, 0, 50, 0, 0], [0] * 7 + [100, 0, 0])])
    assert by_name(samples, "spoiler_drift_psi", feature="rating") == []
    assert by_name(samples, "spoiler_drift_chi2", feature="score") == []
    # All 70 words land in one bin: text_words PSI far above its threshold.
    psi = by_name(samples, "spoiler_drift_psi", feature="text_words")[0]
    assert psi > by_name(samples, "spoiler_drift_threshold", feature="text_words",
                         statistic="psi")[0]
    unknown = by_name(samples, "spoiler_input_mean", feature="unknown_token_share")
    assert unknown == pytest.approx([0.02])


def test_drift_needs_each_features_own_minimum() -> None:
    # 60 values: enough for text_words (12 bins -> 60), not for score (20 bins -> 100).
    ref = reference.parse(META)
    samples = compute(rows(60), NOW, "5m", 300, "v1", ref, MinCounts())
    assert drift.FEATURES["text_words"].min_sample == 60
    assert by_name(samples, "spoiler_drift_psi", feature="text_words")
    assert by_name(samples, "spoiler_drift_psi", feature="score") == []
    assert by_name(samples, "spoiler_drift_threshold", feature="score") == []


def test_another_model_version_gets_no_reference_statistics() -> None:
    ref = reference.parse(META)
    samples = compute(rows(200, labelled=100), NOW, "5m", 300, "v0", ref, MinCounts())
    names = {s.name for s in samples}
    assert "spoiler_model_accuracy" in names and "spoiler_model_estimated_accuracy" in names
    for absent in ("spoiler_drift_psi", "spoiler_drift_threshold", "spoiler_model_quality_floor",
                   "spoiler_model_estimated_accuracy_error_limit",
                   "spoiler_model_estimated_f1_error_limit",
                   "spoiler_model_predicted_spoiler_ratio_tolerance"):
        assert absent not in names, absent


def test_one_class_window_has_accuracy_but_no_auc_or_f1() -> None:
    ref = reference.parse(META)
    # positive_every larger than n: only index 0 is a spoiler, so one actual positive.
    samples = compute(rows(60, labelled=60, positive_every=1000), NOW, "5m", 300, "v1", ref,
                      MinCounts())
    assert by_name(samples, "spoiler_model_accuracy") == [1.0]
    assert by_name(samples, "spoiler_model_roc_auc") == []
    assert by_name(samples, "spoiler_model_recall") == []
    assert by_name(samples, "spoiler_model_f1") == []


def test_rows_outside_window_are_ignored() -> None:
    samples = compute(rows(40, age=600), NOW, "5m", 300, "v1", None, MinCounts())
    assert by_name(samples, "spoiler_model_predictions") == [0]


def test_every_sample_is_declared_and_collects() -> None:
    ref = reference.parse(META)
    samples = compute(rows(100, labelled=60), NOW, "5m", 300, "v1", ref, MinCounts())
    samples += reference_samples(ref)
    assert {s.name for s in samples} <= set(METRICS)
    for s in samples:
        assert set(s.labels) == set(METRICS[s.name][1]), s.name
    collector = SnapshotCollector()
    collector.replace(samples)
    families = {f.name: f for f in collector.collect()}
    assert "spoiler_drift_psi" in families
    assert len(families["spoiler_model_confusion"].samples) == 4
