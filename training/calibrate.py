"""Fit the score calibration on the validation split and pick the method by Brier score.

Both candidates (Platt scaling on the logit, isotonic regression) are scored by
the Brier score of k-fold cross-fitting *within* the validation split: each fold
is calibrated by a map fitted on the other folds, so isotonic regression, which
always wins on the points it was fitted to, gets no unfair edge. The winner is
then refitted on the whole split. Raw scores stay a candidate too: a model that
is already calibrated keeps the identity.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from spoiler_common.calibration import (
    Calibration,
    CalibrationMethod,
    expected_calibration_error,
    logit,
)

log = logging.getLogger(__name__)

FOLDS = 5
# Isotonic regression keeps at most this many breakpoints in bundle.json (its
# fit can have one per distinct score); the thinned map differs by < 1e-3.
MAX_ISOTONIC_POINTS = 200


def fit(method: CalibrationMethod, labels: np.ndarray, raw: np.ndarray) -> Calibration:
    """One calibration map of `method`, fitted to (raw score, label) pairs."""
    if method == "identity":
        return Calibration()
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        # Nearly unregularised: two parameters, hundreds of points.
        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(logit(raw).reshape(-1, 1), labels)
        return Calibration("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(raw, labels)
    x, y = np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)
    if len(x) > MAX_ISOTONIC_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_ISOTONIC_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    if len(x) < 2:  # a constant map (one class only): make it a valid two-point line
        x, y = np.array([0.0, 1.0]), np.array([float(y[0]), float(y[0])])
    return Calibration("isotonic", x=tuple(map(float, x)), y=tuple(map(float, y)))


def _cross_fitted(method: CalibrationMethod, labels: np.ndarray, raw: np.ndarray,
                  seed: int) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    out = np.empty(len(raw), dtype=float)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for fit_idx, held_idx in folds.split(raw.reshape(-1, 1), labels):
        out[held_idx] = fit(method, labels[fit_idx], raw[fit_idx]).apply(raw[held_idx])
    return out


def choose(labels: np.ndarray, raw: np.ndarray, seed: int = 42, split: str = "validation"
           ) -> tuple[Calibration, dict[str, Any]]:
    """The calibration with the lowest cross-fitted Brier score on `split`, and the scores."""
    labels = np.asarray(labels, dtype=int)
    raw = np.asarray(raw, dtype=float)
    candidates: dict[str, dict[str, float]] = {}
    methods: tuple[CalibrationMethod, ...] = ("identity", "platt", "isotonic")
    enough = min(np.bincount(labels, minlength=2)) >= FOLDS
    for method in methods:
        if method != "identity" and not enough:
            continue  # too few of one class to cross-fit; keep raw scores
        probs = raw if method == "identity" else _cross_fitted(method, labels, raw, seed)
        candidates["raw" if method == "identity" else method] = {
            "brier": float(np.mean((probs - labels) ** 2)),
            "ece": expected_calibration_error(labels, probs),
        }
    best = min(candidates, key=lambda k: candidates[k]["brier"])
    chosen: CalibrationMethod = "identity" if best == "raw" else best  # type: ignore[assignment]
    calibration = fit(chosen, labels, raw)
    log.info("Calibration chosen method=%s %s_brier=%s", chosen, split,
             {k: round(v["brier"], 4) for k, v in candidates.items()})
    report = {"method": chosen, "params": calibration.params(),
              "selected_by": f"{split}_brier", "folds": FOLDS, "candidates": candidates}
    return calibration, report


__all__ = ["choose", "fit"]
