"""Pure logic of the model pipeline and runtime: text, truncation, padding, data rules, metrics."""

from __future__ import annotations

import numpy as np
import pytest

from spoiler_common import drift
from spoiler_common.model_runtime import (
    head_tail_split,
    model_text,
    pad,
    softmax_spoiler,
    truncate_ids,
)
from training import base_model, reference
from training.data import check_columns
from training.exceptions import BaseModelError, DataError
from training.metrics import classification_metrics, tune_threshold
from training.params import PrepareParams
from training.prepare import clean, prepare_records, split

pytestmark = pytest.mark.unit


def _row(text: str, spoiler: bool, movie: str = "tt1", summary: str = "") -> dict:
    return {"review_text": text, "is_spoiler": spoiler, "review_summary": summary,
            "movie_id": movie, "rating": "7"}


def test_model_text_joins_summary_and_text() -> None:
    assert model_text("Great", "A film.") == "Great A film."
    assert model_text("", "A film.") == "A film."
    assert model_text(None, "  A film. ") == "A film."
    assert model_text("Only summary", "") == "Only summary"


def test_truncation_head_and_head_tail() -> None:
    ids = list(range(100))
    assert truncate_ids(ids, 10, "head") == list(range(10))
    head, tail = head_tail_split(10)
    assert (head, tail) == (2, 8)
    assert truncate_ids(ids, 10, "head_tail") == [0, 1, *range(92, 100)]
    assert truncate_ids(ids[:5], 10, "head_tail") == ids[:5]


def test_pad_to_longest_in_batch() -> None:
    ids, mask = pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == np.int64


def test_softmax_is_stable() -> None:
    p = softmax_spoiler(np.array([[0.0, 0.0], [1000.0, -1000.0], [-5.0, 5.0]]))
    assert p[0] == pytest.approx(0.5)
    assert p[1] == pytest.approx(0.0)
    assert p[2] > 0.99


def test_clean_dedupes_and_drops_conflicts_and_empty() -> None:
    rows = [_row("Same text", True), _row("same   TEXT", True), _row("Clash", True),
            _row("clash", False), _row("   ", False), _row("Other", False)]
    kept, dropped = clean(rows)
    assert sorted(r["text"] for r in kept) == ["Other", "Same text"]
    assert dropped == {"empty_dropped": 1, "duplicates_dropped": 1, "conflicting_dropped": 2}


def test_missing_columns_error_names_them() -> None:
    with pytest.raises(DataError, match=r"is_spoiler"):
        check_columns([{"review_text": "x"}], "file.jsonl")


def test_single_class_is_refused() -> None:
    rows = [_row(f"text {i}", False) for i in range(50)]
    with pytest.raises(DataError, match="only non-spoilers"):
        prepare_records(rows, PrepareParams())


def test_split_keeps_natural_rate_and_movies_apart() -> None:
    rng = np.random.default_rng(0)
    rows = [_row(f"review number {i}", bool(rng.random() < 0.25), movie=f"tt{i % 40}")
            for i in range(800)]
    kept, _ = clean(rows)
    parts = split(kept, PrepareParams(split_by="random"))
    rate = np.mean([r["label"] for r in kept])
    assert abs(np.mean([r["label"] for r in parts["test"]]) - rate) < 0.03
    by_movie = split(kept, PrepareParams(split_by="movie"))
    movies = {k: {r["movie_id"] for r in v} for k, v in by_movie.items()}
    assert not movies["train"] & movies["test"]
    assert not movies["validation"] & movies["test"]
    assert not movies["train"] & movies["validation"]


def test_threshold_maximises_f1() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    assert tune_threshold(labels, scores) == pytest.approx(0.7)
    m = classification_metrics(labels, scores, 0.7)
    assert m["f1_spoiler"] == 1.0 and m["confusion_matrix"]["tp"] == 2


def test_reference_block_has_every_drift_feature_with_its_bins() -> None:
    rows = [{"text": "a b", "review_text": "a b c", "review_summary": s, "rating": r}
            for s, r in (("", 3), ("x", 10), ("y", None))]
    values = reference.feature_values(rows, np.array([0.1, 0.5, 0.9]), [3, 4, 0], [0, 1, 0])
    block = reference.build(values, "validation")
    assert block["n"] == 3 and set(block["features"]) == set(drift.FEATURES)
    for name, hist in block["features"].items():
        assert hist["edges"] == list(drift.FEATURES[name].edges)
    assert sum(block["features"]["score"]["counts"]) == 3
    assert sum(block["features"]["rating"]["counts"]) == 2  # the review without one is left out
    assert block["features"]["empty_summary"]["counts"] == [2, 1]
    # No ratings at all: no rating histogram (and so no rating drift), not an empty one.
    no_rating = reference.feature_values([{**r, "rating": None} for r in rows],
                                         np.array([0.1, 0.5, 0.9]), [3, 4, 1], [0, 1, 0])
    assert "rating" not in reference.build(no_rating, "validation")["features"]


def test_drift_thresholds_cover_every_statistic_and_fall_with_size() -> None:
    rng = np.random.default_rng(0)
    rows = [{"text": "t", "review_text": "w " * int(n), "review_summary": "", "rating": 8}
            for n in rng.integers(20, 400, size=300)]
    values = reference.feature_values(rows, rng.beta(2, 5, size=300), [50] * 300, [0] * 300)
    block = reference.thresholds(reference.build(values, "validation"), draws=300)
    assert block["sizes"] == list(drift.THRESHOLD_SIZES)
    for name, stats in block["features"].items():
        assert set(stats) == set(drift.FEATURES[name].statistics)
    psi = block["features"]["score"]["psi"]
    assert psi[0] > psi[3] > 0


def test_quality_floors_sit_below_the_expected_value_and_rise_with_size() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(400) < 0.25
    scores = np.where(labels, rng.beta(5, 2, 400), rng.beta(2, 5, 400))
    block = reference.quality_floors(labels, scores, 0.5, draws=400)
    for metric in ("accuracy", "f1_spoiler"):
        expected, floors = block["metrics"][metric]["expected"], block["metrics"][metric]["floor"]
        assert all(f < expected for f in floors)
        assert floors == sorted(floors)
    acc = block["metrics"]["accuracy"]
    # About expected - 3 * sqrt(p(1-p) (1/n + 1/n_test)) for accuracy.
    p = acc["expected"]
    assert acc["floor"][2] == pytest.approx(p - 3 * np.sqrt(p * (1 - p) * (1 / 100 + 1 / 400)),
                                            abs=0.02)


def test_calibration_is_chosen_by_cross_fitted_brier_and_fixes_overconfidence() -> None:
    from spoiler_common.calibration import expected_calibration_error
    from training import calibrate

    rng = np.random.default_rng(2)
    true_p = rng.beta(1.5, 4, size=2000)
    labels = (rng.random(2000) < true_p).astype(int)
    raw = 1 / (1 + np.exp(-3 * np.log(true_p / (1 - true_p))))  # overconfident scores
    calibration, report = calibrate.choose(labels, raw)
    assert report["method"] in ("platt", "isotonic")
    assert report["candidates"][report["method"]]["brier"] < report["candidates"]["raw"]["brier"]
    fixed = calibration.apply(raw)
    assert expected_calibration_error(labels, fixed) < expected_calibration_error(labels, raw) / 2
    assert np.all(np.diff(fixed[np.argsort(raw)]) >= -1e-12)  # monotone: ranking kept


def test_base_model_resolution_errors() -> None:
    with pytest.raises(BaseModelError, match="does not exist"):
        base_model.resolve("./no/such/model")
    assert base_model.resolve("distilbert-base-uncased").kind == "hub"
    assert base_model.resolve("offline:minilm").kind == "offline"
