"""What the monitor compares live traffic with: reference histograms, drift thresholds
and quality floors, all from held-out data and the model's own calibrated scores.

- ``reference``: histograms of every feature in ``spoiler_common.drift.FEATURES``
  over the held-out reviews (validation and test: neither was trained on).
- ``drift_thresholds``: per feature and statistic, the value an unchanged stream
  exceeds only ``alpha`` of the time (1% shared by all the statistics of a window,
  Bonferroni), tabulated by window size
  (``spoiler_common.drift.null_thresholds``: both the reference's and the
  window's sampling error are in it).
- ``quality_floors``: per metric, ``expected - z * SE(n)`` by labelled-window
  size n, where ``expected`` is the test split's value and
  ``SE(n)^2 = s^2 / n + s^2 / n_test`` (``s^2`` bootstrapped from the test
  predictions): the window's own sampling error plus the test estimate's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from spoiler_common import drift

# A stable stream should raise no drift alert in a window 99% of the time, over ALL the
# statistics the monitor tests at once: each statistic gets ALPHA / their number
# (Bonferroni), and enough draws that such a far quantile is not mostly noise.
ALPHA = 0.01
DRAWS = 20_000
FLOOR_Z = 3.0
FLOOR_DRAWS = 2_000  # a variance, not a far quantile: fewer draws do


def feature_values(rows: Sequence[dict[str, Any]], scores: np.ndarray,
                   input_tokens: Sequence[int], unknown_tokens: Sequence[int]
                   ) -> dict[str, np.ndarray]:
    """Each drift feature's values for these reviews, computed as the monitor computes them."""
    words = [len(str(r.get("review_text") or r["text"]).split()) for r in rows]
    ratings = [float(r["rating"]) for r in rows if isinstance(r.get("rating"), int)]
    unknown = [u / t if t else np.nan for u, t in zip(unknown_tokens, input_tokens, strict=True)]
    empty = [float(not str(r.get("review_summary") or "").strip()) for r in rows]
    values = {
        "score": np.asarray(scores, dtype=float),
        "text_words": np.asarray(words, dtype=float),
        "rating": np.asarray(ratings, dtype=float),
        "unknown_token_share": np.asarray(unknown, dtype=float),
        "empty_summary": np.asarray(empty, dtype=float),
    }
    assert set(values) == set(drift.FEATURES), "every drift feature needs its values here"
    return values


def build(values: dict[str, np.ndarray], source: str) -> dict[str, Any]:
    """The `reference` block: one histogram per feature that has values."""
    features: dict[str, Any] = {}
    n = 0
    for name, feature in drift.FEATURES.items():
        vals = values[name][~np.isnan(values[name])]
        n = max(n, len(values[name]))
        if len(vals) == 0:  # e.g. no ratings in this data: no rating drift
            continue
        counts = drift.histogram(vals, feature.edges)
        features[name] = {"edges": list(feature.edges), "counts": [int(c) for c in counts]}
    return {"source": source, "n": n, "features": features}


def thresholds(reference: dict[str, Any], *, alpha: float = ALPHA, draws: int = DRAWS,
               seed: int = 0) -> dict[str, Any]:
    """The `drift_thresholds` block for a `reference` block (`alpha` for the whole family)."""
    counts = {name: h["counts"] for name, h in reference["features"].items()}
    tests = sum(len(drift.FEATURES[name].statistics) for name in counts)
    each = alpha / max(tests, 1)
    table = drift.thresholds_for(counts, drift.THRESHOLD_SIZES, alpha=each, draws=draws,
                                 seed=seed)
    return {
        "alpha": each, "family_alpha": alpha, "statistics": tests, "draws": draws,
        "sizes": list(drift.THRESHOLD_SIZES),
        "method": "two-sample parametric bootstrap of the reference histogram",
        "features": {name: {s: [round(v, 6) for v in vals] for s, vals in stats.items()}
                     for name, stats in table.items()},
    }


def _f1(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    tp = (labels & predicted).sum(axis=-1)
    fp = (~labels & predicted).sum(axis=-1)
    fn = (labels & ~predicted).sum(axis=-1)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def quality_floors(labels: np.ndarray, scores: np.ndarray, threshold: float, *,
                   z: float = FLOOR_Z, draws: int = FLOOR_DRAWS, seed: int = 0) -> dict[str, Any]:
    """The `quality_floors` block from the test split's labels and calibrated scores."""
    y = np.asarray(labels, dtype=bool)
    predicted = np.asarray(scores, dtype=float) >= threshold
    n = len(y)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(draws, n))
    boot_y, boot_p = y[idx], predicted[idx]
    metrics = {
        "accuracy": (float(np.mean(y == predicted)), np.mean(boot_y == boot_p, axis=1)),
        "f1_spoiler": (float(_f1(y, predicted)), _f1(boot_y, boot_p)),
    }
    sizes = list(drift.THRESHOLD_SIZES)
    out: dict[str, Any] = {"z": z, "source": "test", "n": n, "sizes": sizes, "metrics": {}}
    for name, (expected, boot) in metrics.items():
        # Variance of the metric at n examples; at m examples it scales by n / m.
        var_n = float(np.var(boot))
        floors = [max(0.0, expected - z * float(np.sqrt(var_n * n / m + var_n)))
                  for m in sizes]
        out["metrics"][name] = {"expected": round(expected, 6),
                                "floor": [round(f, 6) for f in floors]}
    return out


__all__ = ["build", "feature_values", "quality_floors", "thresholds"]
