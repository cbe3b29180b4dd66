"""The drift baseline and calibration, read from the model bundle's ``bundle.json``.

Only the JSON is read: the monitor never loads the ONNX model.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.exceptions import ReferenceError_
from monitoring.stats import Calibration

log = logging.getLogger(__name__)

# Feature name (the `feature` label) -> keys the reference block may use for it.
FEATURE_KEYS: dict[str, tuple[str, ...]] = {
    "score": ("score", "scores", "spoiler_probability", "validation_score"),
    "text_words": ("text_words", "review_length_words", "review_words", "length_words",
                   "review_length", "words"),
    "rating": ("rating", "ratings"),
    "unknown_token_share": ("unknown_token_share", "unknown_share", "unk_share",
                            "oov_share", "unknown_tokens_share"),
    "empty_summary": ("empty_summary_share", "empty_summary", "summary_empty"),
}
FEATURES = tuple(FEATURE_KEYS)
METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "accuracy": ("test_accuracy", "validation_accuracy", "val_accuracy"),
    "f1": ("f1_spoiler", "test_f1_spoiler", "validation_f1_spoiler", "val_f1_spoiler",
           "test_f1"),
}
# A share given as one number becomes a two-bin histogram (no / yes) of the
# reference block's `n` reviews (or BERNOULLI_N when it does not say).
BERNOULLI_EDGES = (0.0, 0.5, 1.0)
BERNOULLI_N = 1000


@dataclass(frozen=True)
class Histogram:
    edges: tuple[float, ...]
    counts: tuple[float, ...]

    def shares(self) -> np.ndarray:
        arr = np.asarray(self.counts, dtype=float)
        total = arr.sum()
        return arr / total if total > 0 else arr


@dataclass(frozen=True)
class Reference:
    """What the monitor compares live traffic against."""

    model_name: str
    model_version: str
    threshold: float
    training_spoiler_rate: float | None
    histograms: dict[str, Histogram] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    metrics: dict[str, float] = field(default_factory=dict)


def _histogram(name: str, raw: Any, n: int = BERNOULLI_N) -> Histogram:
    if isinstance(raw, int | float):
        share = float(raw)
        if not 0.0 <= share <= 1.0:
            raise ReferenceError_(f"reference {name}: a share must be in [0, 1], got {share}")
        return Histogram(BERNOULLI_EDGES, ((1.0 - share) * n, share * n))
    if not isinstance(raw, Mapping):
        raise ReferenceError_(f"reference {name}: expected {{bins, counts}} or a share")
    edges = raw.get("bins", raw.get("edges"))
    counts = raw.get("counts")
    if edges is None and "share" in raw:
        return _histogram(name, raw["share"], int(raw.get("n") or n))
    if not isinstance(edges, list) or not isinstance(counts, list):
        raise ReferenceError_(f"reference {name}: needs lists `bins` (edges) and `counts`")
    if len(edges) != len(counts) + 1 or len(counts) < 1:
        raise ReferenceError_(
            f"reference {name}: {len(edges)} edges for {len(counts)} counts "
            "(need one edge more than counts)"
        )
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ReferenceError_(f"reference {name}: bin edges must increase strictly")
    return Histogram(tuple(float(e) for e in edges), tuple(float(c) for c in counts))


def _calibration(raw: Any) -> Calibration:
    if not isinstance(raw, Mapping):
        return Calibration()
    method = str(raw.get("method", "identity"))
    if method in ("none", "identity", "isotonic_applied", "applied"):
        return Calibration()
    if method == "temperature":
        return Calibration("temperature", t=float(raw.get("temperature", raw.get("t", 1.0))))
    if method == "platt":
        return Calibration("platt", a=float(raw.get("a", 1.0)), b=float(raw.get("b", 0.0)))
    if method in ("binning", "isotonic", "histogram"):
        x = raw.get("x", raw.get("bins"))
        y = raw.get("y", raw.get("values"))
        if isinstance(x, list) and isinstance(y, list) and len(x) == len(y) and x:
            return Calibration("binning", x=tuple(map(float, x)), y=tuple(map(float, y)))
    log.warning("Unknown calibration in bundle.json, using scores as probabilities. method=%s",
                method)
    return Calibration()


def parse(meta: Mapping[str, Any]) -> Reference:
    """Build a Reference from the parsed bundle.json."""
    block = meta.get("reference")
    if not isinstance(block, Mapping):
        raise ReferenceError_("bundle.json has no `reference` block: rebuild the bundle with "
                              "the current training code")
    histograms: dict[str, Histogram] = {}
    if "bins" in block and "counts" in block:  # the score histogram at the top level
        histograms["score"] = _histogram("score", {"bins": block["bins"],
                                                   "counts": block["counts"]})
    for feature, keys in FEATURE_KEYS.items():
        for key in keys:
            # A null entry means the validation set lacked that input (e.g. no ratings).
            if block.get(key) is not None and feature not in histograms:
                n = block.get("n")
                histograms[feature] = _histogram(
                    key, block[key], int(n) if isinstance(n, int) and n > 0 else BERNOULLI_N)
    metrics = {k: float(v) for k, v in (meta.get("metrics") or {}).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    # The alert rules compare against `accuracy` and `f1`: accept the usual prefixed names.
    for short, names in METRIC_ALIASES.items():
        found = next((metrics[n] for n in names if n in metrics), None)
        if short not in metrics and found is not None:
            metrics[short] = found
    rate = meta.get("training_spoiler_rate")
    return Reference(
        model_name=str(meta.get("name", "unknown")),
        model_version=str(meta.get("version", "unknown")),
        threshold=float(meta.get("threshold", 0.5)),
        training_spoiler_rate=float(rate) if isinstance(rate, int | float) else None,
        histograms=histograms,
        calibration=_calibration(meta.get("calibration") or block.get("calibration")),
        metrics=metrics,
    )


def load(path: Path) -> Reference:
    """Read `path` (a bundle directory or its bundle.json)."""
    file = path / "bundle.json" if path.is_dir() else path
    try:
        meta = json.loads(file.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ReferenceError_(
            f"no bundle.json at {file}: set SPOILER_MONITOR_BUNDLE_PATH to the serving bundle"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ReferenceError_(f"{file} is not valid JSON: {exc}") from exc
    ref = parse(meta)
    missing = [f for f in FEATURES if f not in ref.histograms]
    if missing:
        log.warning("Reference lacks histograms; their drift is not reported. missing=%s "
                    "bundle=%s", ",".join(missing), file)
    return ref


__all__ = ["FEATURES", "Histogram", "Reference", "load", "parse"]
