"""What the monitor compares live traffic against, read from ``bundle.json`` (format 2).

Only the JSON is read: the monitor never loads the ONNX model. The format is the
contract of docs/architecture.md ("bundle.json"): the runtime already applies the
bundle's calibration, so every stored ``spoiler_probability`` is a calibrated
probability and the monitor uses it as one (no calibration here).

From the bundle the monitor takes:

- ``reference.features``: histograms of the validation split, one per
  :data:`spoiler_common.drift.FEATURES` name, over exactly that feature's edges;
- ``drift_thresholds``: per feature and statistic, the value a same-size sample
  of the reference exceeds only ``alpha`` of the time, tabulated at window sizes;
- ``quality_floors``: per quality metric, its expected (test-split) value and the
  floor below which a window of ``n`` labelled predictions is degraded;
- ``metrics`` (test split): the calibration error that bounds the label-free
  estimate's bias, and the confusion matrix giving the expected share of
  predicted spoilers.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.exceptions import ReferenceError_
from spoiler_common.drift import FEATURES, SizeCurve, Statistic

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
# bundle.json's name of a quality metric -> the monitor's metric (`spoiler_model_<name>`)
# and the `metric` label of its floor.
QUALITY_METRICS: dict[str, str] = {"accuracy": "accuracy", "f1_spoiler": "f1"}
# z of the monitor's own sampling bounds when the bundle does not give one.
DEFAULT_Z = 3.0
REBUILD = ("rebuild the bundle with the current training code (`python -m training "
           "ensure-bundle --force` or `dvc repro`) and point SPOILER_MONITOR_BUNDLE_PATH at it")


@dataclass(frozen=True)
class Histogram:
    edges: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def n(self) -> float:
        return float(sum(self.counts))

    def shares(self) -> np.ndarray:
        arr = np.asarray(self.counts, dtype=float)
        total = arr.sum()
        return arr / total if total > 0 else arr


@dataclass(frozen=True)
class QualityFloor:
    """A quality metric's expected value and its floor as a function of labelled n."""

    expected: float
    floor: SizeCurve


@dataclass(frozen=True)
class Reference:
    """The bundle's reference, thresholds and floors."""

    model_name: str
    model_version: str
    threshold: float
    training_spoiler_rate: float | None
    histograms: dict[str, Histogram] = field(default_factory=dict)
    # (feature, statistic) -> threshold as a function of the window's n.
    thresholds: dict[tuple[str, Statistic], SizeCurve] = field(default_factory=dict)
    # monitor metric name ("accuracy", "f1") -> floor.
    floors: dict[str, QualityFloor] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    calibration: str = "identity"
    z: float = DEFAULT_Z
    # Share of predicted spoilers on the test split and that split's size.
    predicted_spoiler_ratio: float | None = None
    test_n: int | None = None

    def threshold_at(self, feature: str, stat: Statistic, n: float) -> float:
        """The drift threshold of (feature, stat) for a window of n values; nan if none."""
        curve = self.thresholds.get((feature, stat))
        return curve.at(n) if curve is not None else math.nan

    @property
    def calibration_error(self) -> float:
        """The test split's expected calibration error (0 when the bundle lacks it)."""
        ece = self.metrics.get("ece", 0.0)
        return ece if math.isfinite(ece) else 0.0


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReferenceError_(f"bundle.json {where}: expected a number, got {value!r}")
    return float(value)


def _numbers(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise ReferenceError_(f"bundle.json {where}: expected a non-empty list of numbers")
    return [_number(v, where) for v in value]


def _mapping(meta: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    block = meta.get(key)
    if not isinstance(block, Mapping):
        raise ReferenceError_(f"bundle.json has no `{where}{key}` block: {REBUILD}")
    return block


def _sizes(block: Mapping[str, Any], where: str) -> list[int]:
    sizes = [int(s) for s in _numbers(block.get("sizes"), f"{where}.sizes")]
    if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1:
        raise ReferenceError_(f"bundle.json {where}.sizes must be positive and increasing")
    return sizes


def _curve(sizes: Sequence[int], values: Any, where: str) -> SizeCurve:
    vals = _numbers(values, where)
    if len(vals) != len(sizes):
        raise ReferenceError_(f"bundle.json {where}: {len(vals)} values for {len(sizes)} sizes")
    return SizeCurve.from_json(sizes, vals)


def _histograms(block: Mapping[str, Any]) -> dict[str, Histogram]:
    features = _mapping(block, "features", "reference.")
    out: dict[str, Histogram] = {}
    for name, raw in features.items():
        feature = FEATURES.get(name)
        if feature is None:
            log.warning("bundle.json reference has a feature this monitor does not know; "
                        "ignored. feature=%s", name)
            continue
        where = f"reference.features.{name}"
        if not isinstance(raw, Mapping):
            raise ReferenceError_(f"bundle.json {where}: expected {{edges, counts}}")
        edges = _numbers(raw.get("edges"), f"{where}.edges")
        counts = _numbers(raw.get("counts"), f"{where}.counts")
        # Thresholds hold only for the bins they were computed on: the shared definition.
        if len(edges) != len(feature.edges) or not np.allclose(edges, feature.edges):
            raise ReferenceError_(
                f"bundle.json {where}.edges differ from spoiler_common.drift.FEATURES "
                f"[{name!r}]: the bundle was built with other bins; {REBUILD}")
        if len(counts) != feature.bins or any(c < 0 for c in counts) or sum(counts) <= 0:
            raise ReferenceError_(
                f"bundle.json {where}.counts: need {feature.bins} non-negative counts "
                "with a positive sum")
        out[name] = Histogram(tuple(edges), tuple(counts))
    return out


def _thresholds(meta: Mapping[str, Any],
                histograms: Mapping[str, Histogram]) -> dict[tuple[str, Statistic], SizeCurve]:
    block = _mapping(meta, "drift_thresholds")
    sizes = _sizes(block, "drift_thresholds")
    per_feature = _mapping(block, "features", "drift_thresholds.")
    out: dict[tuple[str, Statistic], SizeCurve] = {}
    for name in histograms:
        raw = per_feature.get(name)
        for stat in FEATURES[name].statistics:
            values = raw.get(stat) if isinstance(raw, Mapping) else None
            if values is None:
                # The statistic is still exported; without its threshold it cannot alert.
                log.warning("bundle.json has no drift threshold for this statistic; it is "
                            "reported but cannot alert. feature=%s statistic=%s", name, stat)
                continue
            out[(name, stat)] = _curve(sizes, values, f"drift_thresholds.features.{name}.{stat}")
    return out


def _floors(meta: Mapping[str, Any]) -> tuple[dict[str, QualityFloor], float]:
    block = _mapping(meta, "quality_floors")
    sizes = _sizes(block, "quality_floors")
    metrics = _mapping(block, "metrics", "quality_floors.")
    out: dict[str, QualityFloor] = {}
    for key, name in QUALITY_METRICS.items():
        raw = metrics.get(key)
        if not isinstance(raw, Mapping):
            log.warning("bundle.json has no quality floor for this metric; its alert cannot "
                        "fire. metric=%s", key)
            continue
        where = f"quality_floors.metrics.{key}"
        out[name] = QualityFloor(_number(raw.get("expected"), f"{where}.expected"),
                                 _curve(sizes, raw.get("floor"), f"{where}.floor"))
    z = block.get("z", DEFAULT_Z)
    return out, _number(z, "quality_floors.z")


def _confusion_cells(cm: Any) -> tuple[float, float, float, float] | None:
    """(tn, fp, fn, tp) of the test split's `confusion_matrix`, or None.

    The format-2 contract writes it [[tn, fp], [fn, tp]]; the packaging of
    issue-12-train (64f5e96) still writes {"tn", "fp", "fn", "tp"}: both are read.
    """
    try:
        if isinstance(cm, Mapping):
            cells = (cm["tn"], cm["fp"], cm["fn"], cm["tp"])
        else:
            (tn, fp), (fn, tp) = cm
            cells = (tn, fp, fn, tp)
        tn_, fp_, fn_, tp_ = (_number(c, "confusion_matrix") for c in cells)
    except (KeyError, TypeError, ValueError, ReferenceError_):
        return None
    return tn_, fp_, fn_, tp_


def _predicted_ratio(meta: Mapping[str, Any]) -> tuple[float | None, int | None]:
    """Share of predicted spoilers and n of the test split, from `confusion_matrix`."""
    cells = _confusion_cells(meta.get("confusion_matrix"))
    n = sum(cells) if cells else 0
    if cells is None or n <= 0:
        log.warning("bundle.json has no usable confusion_matrix: the predicted spoiler ratio "
                    "has no expected value and its alert cannot fire.")
        return None, None
    _, fp, _, tp = cells
    return (fp + tp) / n, int(n)


def parse(meta: Mapping[str, Any]) -> Reference:
    """Build a Reference from the parsed bundle.json; ReferenceError_ says what to fix."""
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ReferenceError_(
            f"bundle.json has format_version {version!r}; this monitor reads format_version "
            f"{FORMAT_VERSION} (calibrated scores, drift thresholds and quality floors): "
            f"{REBUILD}")
    block = _mapping(meta, "reference")
    histograms = _histograms(block)
    if not histograms:
        raise ReferenceError_(f"bundle.json reference.features is empty: {REBUILD}")
    floors, z = _floors(meta)
    metrics = {k: float(v) for k, v in (meta.get("metrics") or {}).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    ratio, test_n = _predicted_ratio(meta)
    rate = meta.get("training_spoiler_rate")
    calibration = meta.get("calibration")
    return Reference(
        model_name=str(meta.get("name", "unknown")),
        model_version=str(meta.get("version", "unknown")),
        threshold=_number(meta.get("threshold"), "threshold"),
        training_spoiler_rate=float(rate) if isinstance(rate, int | float) else None,
        histograms=histograms,
        thresholds=_thresholds(meta, histograms),
        floors=floors,
        metrics=metrics,
        calibration=str(calibration.get("method", "unknown"))
        if isinstance(calibration, Mapping) else "unknown",
        z=z,
        predicted_spoiler_ratio=ratio,
        test_n=test_n,
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
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReferenceError_(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(meta, Mapping):
        raise ReferenceError_(f"{file} must hold a JSON object")
    ref = parse(meta)
    missing = [f for f in FEATURES if f not in ref.histograms]
    if missing:
        log.info("The reference lacks some features (e.g. no ratings in the data); their "
                 "drift is not reported. missing=%s bundle=%s", ",".join(missing), file)
    return ref


__all__ = ["FORMAT_VERSION", "QUALITY_METRICS", "Histogram", "QualityFloor", "Reference",
           "load", "parse"]
