"""What the monitor compares live traffic against, from the bundle's manifest (format 2).

Only bundle.json is read (``spoiler_common.bundle.read_manifest``, which checks its
format and shape): the monitor never loads the ONNX model. The runtime already
applies the bundle's calibration, so every stored ``spoiler_probability`` is a
calibrated probability and the monitor uses it as one (no calibration here).

From the manifest the monitor takes:

- ``reference.features``: held-out histograms, one per
  :data:`spoiler_common.drift.FEATURES` name, over exactly that feature's edges
  (checked here: thresholds hold only for the bins they were computed on);
- ``drift_thresholds``: per feature and statistic, the value a same-size sample
  of the reference exceeds only ``alpha`` of the time, tabulated at window sizes;
- ``quality_floors``: per quality metric, its expected (test-split) value and the
  floor below which a window of ``n`` labelled predictions is degraded;
- ``metrics`` (test split): the calibration error that bounds the label-free
  estimate's bias; ``confusion_matrix``: the expected share of predicted spoilers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.exceptions import ReferenceError_
from spoiler_common import bundle
from spoiler_common.bundle import REBUILD, BundleManifest
from spoiler_common.drift import FEATURES, SizeCurve, Statistic
from spoiler_common.exceptions import ModelBundleError

log = logging.getLogger(__name__)

# bundle.json's name of a quality metric -> the monitor's metric (`spoiler_model_<name>`)
# and the `metric` label of its floor.
QUALITY_METRICS: dict[str, str] = {"accuracy": "accuracy", "f1_spoiler": "f1"}


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
    z: float = 3.0
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

    @property
    def calibration_level_error(self) -> float:
        """How far the calibration's level may be off: the test split's ECE, or what a test
        split of its size cannot rule out (z standard errors of its spoiler share), whichever
        is larger. A few hundred test reviews measure ECE with an error of its own size."""
        rate = self.metrics.get("spoiler_rate", math.nan)
        n = self.test_n or self.metrics.get("n", 0.0)
        level = (self.z * math.sqrt(rate * (1 - rate) / n)
                 if n and math.isfinite(rate) and 0.0 <= rate <= 1.0 else 0.0)
        return max(self.calibration_error, level)


def _block(value: Any, name: str) -> Any:
    if value is None:
        raise ReferenceError_(f"bundle.json has no `{name}` block: {REBUILD}")
    return value


def _histograms(block: bundle.Reference) -> dict[str, Histogram]:
    out: dict[str, Histogram] = {}
    for name, hist in block.features.items():
        feature = FEATURES.get(name)
        if feature is None:
            log.warning("bundle.json reference has a feature this monitor does not know; "
                        "ignored. feature=%s", name)
            continue
        # Thresholds hold only for the bins they were computed on: the shared definition.
        if len(hist.edges) != len(feature.edges) or not np.allclose(hist.edges, feature.edges):
            raise ReferenceError_(
                f"bundle.json reference.features.{name}.edges differ from "
                f"spoiler_common.drift.FEATURES[{name!r}]: the bundle was built with other "
                f"bins; {REBUILD}")
        out[name] = Histogram(tuple(hist.edges), tuple(float(c) for c in hist.counts))
    return out


def _thresholds(block: bundle.DriftThresholds,
                histograms: Mapping[str, Histogram]) -> dict[tuple[str, Statistic], SizeCurve]:
    out: dict[tuple[str, Statistic], SizeCurve] = {}
    for name in histograms:
        tabulated = block.features.get(name, {})
        for stat in FEATURES[name].statistics:
            values = tabulated.get(stat)
            if values is None:
                # The statistic is still exported; without its threshold it cannot alert.
                log.warning("bundle.json has no drift threshold for this statistic; it is "
                            "reported but cannot alert. feature=%s statistic=%s", name, stat)
                continue
            out[(name, stat)] = SizeCurve.from_json(block.sizes, values)
    return out


def _floors(block: bundle.QualityFloors) -> dict[str, QualityFloor]:
    out: dict[str, QualityFloor] = {}
    for key, name in QUALITY_METRICS.items():
        floor = block.metrics.get(key)
        if floor is None:
            log.warning("bundle.json has no quality floor for this metric; its alert cannot "
                        "fire. metric=%s", key)
            continue
        out[name] = QualityFloor(floor.expected, SizeCurve.from_json(block.sizes, floor.floor))
    return out


def parse(meta: BundleManifest | Mapping[str, Any]) -> Reference:
    """The monitor's Reference from a manifest (or parsed bundle.json); ReferenceError_ says
    what to fix."""
    if not isinstance(meta, BundleManifest):
        try:
            meta = BundleManifest.from_json(meta)
        except ModelBundleError as exc:
            raise ReferenceError_(str(exc)) from exc
    histograms = _histograms(_block(meta.reference, "reference"))
    if not histograms:
        raise ReferenceError_(f"bundle.json reference.features is empty: {REBUILD}")
    floors = _block(meta.quality_floors, "quality_floors")
    cm = meta.confusion_matrix
    ratio = cm.predicted_spoiler_ratio if cm is not None else None
    if ratio is None:
        log.warning("bundle.json has no usable confusion_matrix: the predicted spoiler ratio "
                    "has no expected value and its alert cannot fire.")
    return Reference(
        model_name=meta.name,
        model_version=meta.version,
        threshold=meta.threshold,
        training_spoiler_rate=meta.training_spoiler_rate,
        histograms=histograms,
        thresholds=_thresholds(_block(meta.drift_thresholds, "drift_thresholds"), histograms),
        floors=_floors(floors),
        metrics=meta.metrics.as_floats() if meta.metrics is not None else {},
        calibration=meta.calibration.method,
        z=floors.z,
        predicted_spoiler_ratio=ratio,
        test_n=cm.n if cm is not None and ratio is not None else None,
    )


def load(path: Path) -> Reference:
    """Read `path` (a bundle directory or its bundle.json)."""
    try:
        manifest = bundle.read_manifest(path)
    except ModelBundleError as exc:
        raise ReferenceError_(str(exc)) from exc
    ref = parse(manifest)
    missing = [f for f in FEATURES if f not in ref.histograms]
    if missing:
        log.info("The reference lacks some features (e.g. no ratings in the data); their "
                 "drift is not reported. missing=%s bundle=%s", ",".join(missing), path)
    return ref


__all__ = ["QUALITY_METRICS", "Histogram", "QualityFloor", "Reference", "load", "parse"]
