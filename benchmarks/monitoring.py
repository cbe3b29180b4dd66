"""Monitor benchmark: one recomputation's math, against scikit-learn/scipy-style baselines.

Measures, on the same synthetic window of N predictions (half labelled):
1. monitor: `monitoring.window.compute` (every model, drift and input statistic of one
   window and model version);
2. baseline: scikit-learn's accuracy/precision/recall/F1/ROC-AUC/confusion_matrix on
   the same labelled rows plus numpy histograms for the PSI (what a notebook would do),
   and it checks both agree on accuracy, F1 and ROC-AUC.
Also the end-to-end pass on real PostgreSQL is covered by the integration tests, not here.

Run: `.venv/bin/python -m benchmarks.monitoring [--quick]` (or `make bench`).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from monitoring import reference, stats
from monitoring.window import MinCounts, Rows, compute

EDGES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
META = {"name": "bench", "version": "v1", "threshold": 0.5, "reference": {
    "score": {"bins": EDGES, "counts": [30, 12, 8, 6, 5, 5, 6, 8, 10, 10]},
    "text_words": {"bins": [0, 50, 100, 200, 400, 5000], "counts": [10, 25, 35, 20, 10]},
    "rating": {"bins": [0.5, 2.5, 4.5, 6.5, 8.5, 10.5], "counts": [8, 6, 9, 19, 58]},
    "unknown_token_share": {"bins": [0.0, 0.01, 0.05, 1.0], "counts": [90, 8, 2]},
    "empty_summary_share": 0.02}}


def window_rows(n: int, seed: int = 0) -> Rows:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    actual = np.where(rng.random(n) < 0.5, (rng.random(n) < p).astype(float), np.nan)
    now = 1e9
    return Rows(
        predicted_at=now - rng.random(n) * 3000, produced_at=now - 3100 - rng.random(n),
        probability=p, predicted=p >= 0.5, threshold=np.full(n, 0.5),
        input_tokens=np.full(n, 256.0), unknown_tokens=rng.integers(0, 3, n).astype(float),
        text_words=rng.lognormal(5, 0.7, n), rating=rng.integers(1, 11, n).astype(float),
        summary_empty=(rng.random(n) < 0.02).astype(float), actual=actual,
        labelled_at=np.where(np.isnan(actual), np.nan, now - rng.random(n) * 100),
    )


def _time(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool = False) -> dict[str, Any]:
    from sklearn import metrics as skm

    n = 50_000 if quick else 500_000
    repeat = 2 if quick else 3
    rows = window_rows(n)
    ref = reference.parse(META)
    mins = MinCounts()
    samples = compute(rows, 1e9, "1h", 3600, "v1", ref, mins)
    monitor_s = _time(lambda: compute(rows, 1e9, "1h", 3600, "v1", ref, mins), repeat)

    lab = ~np.isnan(rows.actual)
    y, s, pred = rows.actual[lab].astype(bool), rows.probability[lab], rows.predicted[lab]

    def baseline() -> dict[str, float]:
        out = {"accuracy": skm.accuracy_score(y, pred), "f1": skm.f1_score(y, pred),
               "precision": skm.precision_score(y, pred), "recall": skm.recall_score(y, pred),
               "roc_auc": skm.roc_auc_score(y, s)}
        skm.confusion_matrix(y, pred)
        for feature in ("score", "text_words", "rating", "unknown_token_share"):
            values = rows.feature(feature)
            hist = ref.histograms[feature]
            counts, _ = np.histogram(np.clip(values, hist.edges[0], hist.edges[-1]), hist.edges)
            stats.psi(hist.counts, counts)
        return out

    base = baseline()
    baseline_s = _time(baseline, repeat)
    got = {x.name.removeprefix("spoiler_model_"): x.value for x in samples
           if x.name in ("spoiler_model_accuracy", "spoiler_model_f1", "spoiler_model_roc_auc")}
    agree = all(abs(got[k] - base[k]) < 1e-9 for k in ("accuracy", "f1", "roc_auc"))
    result = {"rows": n, "monitor_window_s": monitor_s, "baseline_sklearn_s": baseline_s,
              "monitor_rows_per_s": n / monitor_s, "samples": len(samples),
              "agree_with_sklearn": agree}
    print(f"{'what':34} {'seconds':>9}")
    print(f"{'monitor: one window, all stats':34} {monitor_s:9.3f}")
    print(f"{'baseline: sklearn metrics + PSI':34} {baseline_s:9.3f}")
    print(f"rows={n} samples={len(samples)} agree_with_sklearn={agree}")
    return result


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
