"""Comparison samples per window: minimums, absent-not-zero, the newest-rows cap (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.comparison import ComparisonSettings, PairRows, compute
from monitoring.exporter import METRICS
from spoiler_common.comparison import compare_paired

pytestmark = pytest.mark.unit
NOW = 1_000_000.0


def rows(n: int, *, one_class: bool = False, seed: int = 1) -> PairRows:
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=bool) if one_class else rng.random(n) < 0.4
    return PairRows(
        predicted_at=NOW - np.arange(n, dtype=float),  # newest first, one a second
        actual=y, champion_score=rng.random(n), challenger_score=np.clip(
            y * 0.5 + rng.random(n) * 0.6, 0, 1),
        champion_threshold=0.5, challenger_threshold=0.5)


def settings(**kw: int) -> ComparisonSettings:
    return ComparisonSettings(**{"min_labels": 50, "alpha": 0.05, "draws": 200,
                                 "max_rows": 10_000, **kw})  # type: ignore[arg-type]


def by_name(samples: list, window: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for s in samples:
        if s.labels["window"] == window:
            out.setdefault(s.name, []).append(s)
    return out


def test_every_sample_is_declared_and_below_the_minimum_only_the_count() -> None:
    samples = compute({("c1", "c2"): rows(120)}, NOW, {"1m": 60.0, "1h": 3600.0},
                      settings(min_labels=100))
    assert {s.name for s in samples} <= set(METRICS)
    short, long = by_name(samples, "1m"), by_name(samples, "1h")
    assert list(short) == ["spoiler_comparison_labelled"]
    assert short["spoiler_comparison_labelled"][0].value == 60  # ages 0-59 s
    assert long["spoiler_comparison_labelled"][0].value == 120
    assert len(long["spoiler_comparison_accuracy"]) == 2  # champion and challenger
    assert {s.labels["metric"] for s in long["spoiler_comparison_difference_low"]} == {
        "accuracy", "f1", "roc_auc"}


def test_undefined_metrics_are_absent_not_zero() -> None:
    # One class only: ROC-AUC and F1 are undefined, accuracy and the test are not.
    samples = compute({("c1", "c2"): rows(100, one_class=True)}, NOW, {"1h": 3600.0},
                      settings())
    names = {s.name for s in samples}
    assert "spoiler_comparison_roc_auc" not in names and "spoiler_comparison_f1" not in names
    assert {s.labels["metric"] for s in samples if s.name == "spoiler_comparison_difference"
            } == {"accuracy"}
    assert "spoiler_comparison_verdict" in names


def test_the_cap_keeps_the_newest_rows() -> None:
    data = rows(300)
    samples = compute({("c1", "c2"): data}, NOW, {"1h": 3600.0}, settings(max_rows=100))
    got = {(s.name, s.labels.get("role")): s.value for s in samples}
    assert got[("spoiler_comparison_labelled", None)] == 100
    newest = compare_paired(data.actual[:100], data.champion_score[:100],
                            data.challenger_score[:100], 0.5, 0.5, min_labels=50, draws=200)
    assert newest is not None
    assert got[("spoiler_comparison_accuracy", "challenger")] == newest.challenger.accuracy
