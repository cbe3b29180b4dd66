"""Window computation: minimum counts give absent series, values match the math."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring import reference, stats
from monitoring.exporter import METRICS, SnapshotCollector
from monitoring.window import MinCounts, Rows, compute, empty_rows, reference_samples

pytestmark = pytest.mark.unit

NOW = 1_000_000.0
META = {
    "name": "tiny", "version": "v1", "threshold": 0.5, "training_spoiler_rate": 0.25,
    "metrics": {"accuracy": 0.8, "f1": 0.6},
    "reference": {
        "score": {"bins": [0.0, 0.5, 1.0], "counts": [75, 25]},
        "text_words": {"bins": [0, 50, 100, 1000], "counts": [10, 60, 30]},
        "rating": {"bins": [0.5, 5.5, 10.5], "counts": [50, 50]},
        "unknown_token_share": {"bins": [0, 0.05, 1], "counts": [90, 10]},
        "empty_summary_share": 0.1,
    },
}


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


def test_reference_parses_histograms_and_share() -> None:
    ref = reference.parse(META)
    assert set(ref.histograms) == set(reference.FEATURES)
    assert ref.histograms["empty_summary"].edges == (0.0, 0.5, 1.0)
    assert ref.histograms["empty_summary"].shares().tolist() == pytest.approx([0.9, 0.1])
    assert ref.training_spoiler_rate == 0.25


def test_reference_metric_aliases() -> None:
    ref = reference.parse({**META, "metrics": {"test_accuracy": 0.8, "f1_spoiler": 0.5}})
    assert ref.metrics["accuracy"] == 0.8 and ref.metrics["f1"] == 0.5


def test_reference_null_feature_is_skipped() -> None:
    ref = reference.parse({**META, "reference": {**META["reference"], "rating": None}})
    assert "rating" not in ref.histograms and "score" in ref.histograms


def test_reference_rejects_malformed_histogram() -> None:
    bad = {**META, "reference": {"score": {"bins": [0, 1], "counts": [1, 2]}}}
    with pytest.raises(reference.ReferenceError_):
        reference.parse(bad)
    with pytest.raises(reference.ReferenceError_):
        reference.parse({"name": "x"})


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
                   "spoiler_model_estimated_accuracy"):
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
    # Score shares (.5, .5) vs reference (.75, .25): PSI by the same formula.
    assert by_name(samples, "spoiler_drift_psi", feature="score") == pytest.approx(
        [stats.psi([75, 25], [50, 50])])
    assert by_name(samples, "spoiler_drift_ks", feature="score") == pytest.approx([0.25])
    # All 70 words land in the middle bin: large PSI on text_words.
    assert by_name(samples, "spoiler_drift_psi", feature="text_words")[0] > 0.2
    unknown = by_name(samples, "spoiler_input_mean", feature="unknown_token_share")
    assert unknown == pytest.approx([0.02])


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
    collector = SnapshotCollector()
    collector.replace(samples)
    families = {f.name: f for f in collector.collect()}
    assert "spoiler_drift_psi" in families
    assert len(families["spoiler_model_confusion"].samples) == 4
