"""Score calibration: the map from the model's raw P(spoiler) to a calibrated probability.

Training fits it on the validation split (``training.calibrate``) and stores it
in ``bundle.json``; the runtime applies it to every score it returns, so
``spoiler_probability`` means the same thing everywhere (worker, ``/predict``,
evaluate) and the monitor may read scores as probabilities (CBPE, drift).

Methods:
- ``identity``: raw scores are used as they are;
- ``platt``: ``sigmoid(a * logit(raw) + b)`` (two numbers; smooth, strictly monotone);
- ``isotonic``: piecewise-linear through the points ``(x, y)`` (non-decreasing),
  flat outside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from spoiler_common.exceptions import ModelBundleError

CalibrationMethod = Literal["identity", "platt", "isotonic"]
METHODS: tuple[CalibrationMethod, ...] = ("identity", "platt", "isotonic")
# Raw scores are clipped this far from 0 and 1 before the logit (float64 softmax
# can return exactly 0 or 1 for confident models).
_EPS = 1e-7


def logit(p: ArrayLike) -> NDArray[np.float64]:
    s = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.asarray(np.log(s / (1 - s)), dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration map; `apply` turns raw scores into probabilities."""

    method: CalibrationMethod = "identity"
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = field(default=())
    y: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ModelBundleError(
                f"unknown calibration method {self.method!r}; expected one of {list(METHODS)}"
            )
        if self.method == "platt" and not (np.isfinite(self.a) and np.isfinite(self.b)):
            raise ModelBundleError("platt calibration needs finite a and b")
        if self.method == "isotonic":
            x, y = np.asarray(self.x, dtype=float), np.asarray(self.y, dtype=float)
            if len(x) < 2 or len(x) != len(y):
                raise ModelBundleError("isotonic calibration needs matching x and y, 2 or more")
            if np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise ModelBundleError("isotonic calibration points must be non-decreasing")
            if np.any((y < 0) | (y > 1)) or not np.all(np.isfinite(x)):
                raise ModelBundleError("isotonic calibration y values must lie in [0, 1]")

    def apply(self, raw: ArrayLike) -> NDArray[np.float64]:
        """Calibrated probabilities for raw scores (same shape), always within [0, 1]."""
        scores = np.asarray(raw, dtype=np.float64)
        if self.method == "identity":
            return np.clip(scores, 0.0, 1.0)
        if self.method == "platt":
            z = self.a * logit(scores) + self.b
            return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)
        return np.clip(np.interp(scores, self.x, self.y), 0.0, 1.0)

    def params(self) -> dict[str, Any]:
        if self.method == "platt":
            return {"a": self.a, "b": self.b}
        if self.method == "isotonic":
            return {"x": list(self.x), "y": list(self.y)}
        return {}

    @classmethod
    def from_params(cls, method: str, params: Mapping[str, Any] | None) -> Calibration:
        """The inverse of `method` + `params()` (as stored in bundle.json)."""
        params = params or {}
        try:
            if method == "platt":
                return cls("platt", a=float(params["a"]), b=float(params["b"]))
            if method == "isotonic":
                return cls("isotonic", x=tuple(float(v) for v in params["x"]),
                           y=tuple(float(v) for v in params["y"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelBundleError(
                f"calibration {method!r} has bad parameters ({exc}); rebuild the bundle"
            ) from exc
        if method == "identity":
            return cls()
        raise ModelBundleError(
            f"unknown calibration method {method!r}; expected one of {list(METHODS)}"
        )


def expected_calibration_error(labels: ArrayLike, probabilities: ArrayLike,
                               bins: int = 10) -> float:
    """ECE: the mean |observed rate - mean probability| over equal-width bins, weighted by size."""
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(probabilities, dtype=float).ravel()
    if len(y) == 0:
        return float("nan")
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(y))


def reliability(labels: ArrayLike, probabilities: ArrayLike,
                bins: int = 10) -> list[dict[str, float]]:
    """Points of a reliability diagram: per non-empty bin, mean probability, observed rate, n."""
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(probabilities, dtype=float).ravel()
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append({"bin": (b + 0.5) / bins, "predicted": float(p[mask].mean()),
                        "observed": float(y[mask].mean()), "n": int(mask.sum())})
    return out


__all__ = [
    "METHODS",
    "Calibration",
    "CalibrationMethod",
    "expected_calibration_error",
    "logit",
    "reliability",
]
