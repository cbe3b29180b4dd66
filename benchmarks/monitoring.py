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

from monitoring import reference
from monitoring.window import MinCounts, Rows, compute
from spoiler_common import drift
from spoiler_common.bundle import BundleManifest


def bench_meta() -> BundleManifest:
    """A bundle manifest with only what the monitor reads, its reference drawn like the
    window below."""
    rng = np.random.default_rng(1)
    values = {"score": rng.random(1000), "text_words": rng.lognormal(5, 0.7, 1000),
              "rating": rng.integers(1, 11, 1000), "unknown_token_share": rng.random(1000) / 50,
              "empty_summary": (rng.random(1000) < 0.02).astype(float)}
    counts = {k: drift.histogram(v, drift.FEATURES[k].edges) for k, v in values.items()}
    sizes = list(drift.THRESHOLD_SIZES)
    return BundleManifest.from_json({
            "format_version": 2, "name": "bench", "version": "v1", "threshold": 0.5,
            "created_at": "2026-01-01T00:00:00Z", "base_model": "bench", "max_length": 128,
            "files": {}, "confusion_matrix": {"tn": 400, "fp": 100, "fn": 100, "tp": 400},
            "metrics": {"accuracy": 0.8, "f1_spoiler": 0.8, "ece": 0.02, "n": 1000,
                        "roc_auc": 0.88, "pr_auc": 0.87, "macro_f1": 0.8, "brier": 0.15,
                        "precision_spoiler": 0.8, "recall_spoiler": 0.8, "spoiler_rate": 0.5},
            "reference": {"source": "validation", "n": 1000, "features": {
                k: {"edges": list(drift.FEATURES[k].edges), "counts": c.tolist()}
                for k, c in counts.items()}},
            "drift_thresholds": {"alpha": 0.01, "family_alpha": 0.01, "statistics": 7,
                                 "draws": 200, "method": "bootstrap", "sizes": sizes,
                                 "features": drift.thresholds_for(counts, sizes, draws=200)},
            "quality_floors": {"z": 3.0, "source": "test", "n": 1000, "sizes": sizes,
                               "metrics": {
                "accuracy": {"expected": 0.8, "floor": [0.7] * len(sizes)},
                "f1_spoiler": {"expected": 0.8, "floor": [0.7] * len(sizes)}}}})


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
    ref = reference.parse(bench_meta())
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
            drift.psi(hist.counts, counts)
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
