"""Pure logic of the model pipeline and runtime: text, truncation, padding, data rules, metrics."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_reference_block_is_what_the_monitor_reads() -> None:
    from monitoring.reference import FEATURES, parse

    rows = [{"text": "a b", "review_text": "a b c", "review_summary": s, "rating": r}
            for s, r in (("", 3), ("x", 10), ("y", None))]
    block = reference.build(rows, np.array([0.1, 0.5, 0.9]), [3, 4, 0], [0, 1, 0])
    ref = parse({"name": "m", "version": "1", "threshold": 0.5, "reference": block})
    assert set(FEATURES) <= set(ref.histograms)
    assert sum(block["counts"]) == 3


def test_base_model_resolution_errors() -> None:
    with pytest.raises(BaseModelError, match="does not exist"):
        base_model.resolve("./no/such/model")
    assert base_model.resolve("distilbert-base-uncased").kind == "hub"
    assert base_model.resolve("offline:minilm").kind == "offline"
