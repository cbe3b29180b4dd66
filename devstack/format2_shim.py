"""TEMPORARY (issue 12): a format-2 bundle.json for the monitor, from a format-1 bundle.

Until the training half of issue 12 (branch issue-12-train) packages format-2 bundles,
the tiny test bundle is format 1: no calibration, thresholds or floors. The monitor
refuses format 1, so the alert-proof experiments and the tests give the monitor a
copy of bundle.json upgraded here with the shared `spoiler_common.drift` code, while
the worker keeps serving the original bundle (its runtime still reads format 1).

Honest limits of the upgrade: the scores stay uncalibrated (`calibration.method`
"identity", and no calibration error is known), and the floors use the binomial
standard error of the test split and the window. Delete this module once real
format-2 bundles exist; `monitor_bundle` already passes a format-2 bundle through.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from spoiler_common import drift

Z = 3.0


def _features(ref: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Format-1 reference keys -> format-2 `reference.features` (the same bins)."""
    n = int(ref["n"])
    raw = {
        "score": {"bins": ref["bins"], "counts": ref["counts"]},
        "text_words": ref.get("text_words"),
        "rating": ref.get("rating"),
        "unknown_token_share": ref.get("unknown_token_share"),
    }
    out = {}
    for name, hist in raw.items():
        if hist is None:
            continue
        edges = [float(e) for e in hist["bins"]]
        assert edges == list(drift.FEATURES[name].edges), name
        out[name] = {"edges": edges, "counts": [float(c) for c in hist["counts"]]}
    share = ref.get("empty_summary_share")
    if share is not None:
        empty = round(float(share) * n)
        out["empty_summary"] = {"edges": list(drift.FEATURES["empty_summary"].edges),
                                "counts": [float(n - empty), float(empty)]}
    return out


def _floor(expected: float, n_test: int, sizes: tuple[int, ...], share: float = 1.0) -> list[
        float]:
    var = expected * (1 - expected)
    return [expected - Z * math.sqrt(var / (n_test * share) + var / (n * share)) for n in sizes]


def upgrade(meta: dict[str, Any]) -> dict[str, Any]:
    """A format-2 bundle.json (docs/architecture.md) from a format-1 one."""
    features = _features(meta["reference"])
    counts = {name: f["counts"] for name, f in features.items()}
    cm = meta["confusion_matrix"]
    n_test = int(cm["tn"] + cm["fp"] + cm["fn"] + cm["tp"])
    metrics = dict(meta["metrics"], n=n_test)
    sizes = drift.THRESHOLD_SIZES
    # F1 lives on the spoiler-involved rows (predicted or actual spoilers) only.
    f1_share = (cm["tp"] + cm["fp"] + cm["fn"]) / n_test
    return {
        **meta,
        "format_version": 2,
        "metrics": metrics,
        "confusion_matrix": [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]],
        "calibration": {"method": "identity", "params": {}, "selected_by": "format-1 shim"},
        "reference": {"source": meta["reference"].get("source", "validation"),
                      "n": meta["reference"]["n"], "features": features},
        "drift_thresholds": {"alpha": 0.01, "draws": 2000, "sizes": list(sizes),
                             "features": drift.thresholds_for(counts, sizes)},
        "quality_floors": {"z": Z, "source": "test", "n": n_test, "sizes": list(sizes),
                           "metrics": {
            "accuracy": {"expected": metrics["accuracy"],
                         "floor": _floor(metrics["accuracy"], n_test, sizes)},
            "f1_spoiler": {"expected": metrics["f1_spoiler"],
                           "floor": _floor(metrics["f1_spoiler"], n_test, sizes, f1_share)},
        }},
    }


def monitor_bundle(bundle: Path, dest: Path) -> Path:
    """The bundle itself if it is format 2, else dest/ holding an upgraded bundle.json."""
    meta = json.loads((bundle / "bundle.json").read_text("utf-8"))
    if meta.get("format_version") == 2:
        return bundle
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "bundle.json").write_text(json.dumps(upgrade(meta), indent=1), "utf-8")
    return dest


__all__ = ["monitor_bundle", "upgrade"]
