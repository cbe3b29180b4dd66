"""One window of one model version: rows in, Prometheus samples out.

Minimum counts (settings, defaults in brackets) below which a statistic is
*absent* rather than 0 or 1 (and floors and thresholds exist only from the
smallest window size the bundle tabulates them at):

- accuracy, F1 and the estimate's error: `min_labelled` labelled predictions [30];
- precision: `min_class` predicted spoilers; recall: `min_class` actual spoilers;
  ROC-AUC: `min_class` of each actual class [5];
- drift statistics of a feature: that feature's `min_sample` values
  (`spoiler_common.drift.FEATURES`: about five a bin, at least 30);
- CBPE estimate and the predicted-spoiler tolerance: `min_estimate` predictions [30];
- label delay quantiles: `min_delay` labels [10].
Counts themselves (predictions, labelled, confusion cells) are always reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitoring import stats
from monitoring.reference import Reference
from spoiler_common import drift
from spoiler_common.drift import FEATURES


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class MinCounts:
    labelled: int = 30
    per_class: int = 5
    estimate: int = 30
    delay: int = 10


@dataclass
class Rows:
    """Column arrays of predictions (one row per prediction); NaN where unknown.

    Times are Unix seconds. `actual` is 1.0 / 0.0 where a label exists, NaN otherwise.
    """

    predicted_at: np.ndarray
    produced_at: np.ndarray
    probability: np.ndarray
    predicted: np.ndarray  # bool
    threshold: np.ndarray
    input_tokens: np.ndarray
    unknown_tokens: np.ndarray
    text_words: np.ndarray
    rating: np.ndarray
    summary_empty: np.ndarray  # float 1/0, NaN when the review row is missing
    actual: np.ndarray
    labelled_at: np.ndarray

    def __len__(self) -> int:
        return len(self.predicted_at)

    def select(self, mask: np.ndarray) -> Rows:
        return Rows(**{k: v[mask] for k, v in vars(self).items()})

    def feature(self, name: str) -> np.ndarray:
        if name == "score":
            return self.probability
        if name == "text_words":
            return self.text_words
        if name == "rating":
            return self.rating
        if name == "unknown_token_share":
            with np.errstate(divide="ignore", invalid="ignore"):
                share = self.unknown_tokens / self.input_tokens
            return np.where(self.input_tokens > 0, share, np.nan)
        if name == "empty_summary":
            return self.summary_empty
        raise KeyError(name)


def empty_rows() -> Rows:
    f = np.array([], dtype=float)
    return Rows(f, f, f, np.array([], dtype=bool), f, f, f, f, f, f, f, f)


def compute(rows: Rows, now: float, window: str, seconds: float, model_version: str,
            reference: Reference | None, mins: MinCounts) -> list[Sample]:
    """Every model/drift sample for the predictions made in (now - seconds, now].

    Statistics against the bundle (drift, thresholds, floors, bounds) are computed
    only for the reference's own model version: another version's scores come from
    another model, and its bundle's reference is not the one loaded.
    """
    labels = {"window": window, "model_version": model_version}
    out: list[Sample] = []
    ref = reference if reference and reference.model_version == model_version else None

    def put(name: str, value: float, **extra: str) -> None:
        if not math.isnan(value):
            out.append(Sample(name, {**labels, **extra}, float(value)))

    win = rows.select(rows.predicted_at > now - seconds)
    n = len(win)
    put("spoiler_model_predictions", n)
    if n:
        put("spoiler_model_predicted_spoiler_ratio", float(np.mean(win.predicted)))
    if ref is not None and ref.predicted_spoiler_ratio is not None and ref.test_n and (
            n >= mins.estimate):
        # Binomial: the window's share and the test split's each have sampling error.
        put("spoiler_model_predicted_spoiler_ratio_tolerance",
            ref.z * stats.proportion_se(ref.predicted_spoiler_ratio, n, ref.test_n))

    # Performance on the predictions whose label has arrived.
    has_label = ~np.isnan(win.actual)
    lab = win.select(has_label)
    actual = lab.actual.astype(bool)
    put("spoiler_model_labelled", len(lab))
    if n:
        put("spoiler_model_labelled_fraction", len(lab) / n)
    conf = stats.confusion(actual, lab.predicted)
    for cell in ("tp", "fp", "tn", "fn"):
        put("spoiler_model_confusion", getattr(conf, cell), cell=cell)
    realised = stats.classification_metrics(conf, mins.labelled, mins.per_class)
    for metric, value in realised.items():
        put(f"spoiler_model_{metric}", value)
    put("spoiler_model_roc_auc", stats.roc_auc(actual, lab.probability, mins.per_class))
    if len(lab) >= mins.labelled:
        put("spoiler_model_actual_spoiler_ratio", float(np.mean(actual)))
        if ref is not None:
            for metric, floor in ref.floors.items():
                put("spoiler_model_quality_floor", floor.floor.at(len(lab)), metric=metric)

    # Label delay of the labels that arrived in the window.
    arrived = rows.select(rows.labelled_at > now - seconds)
    delays = arrived.labelled_at - arrived.produced_at
    for q, value in zip(("0.5", "0.95"), stats.quantiles(delays, (0.5, 0.95), mins.delay),
                        strict=True):
        put("spoiler_model_label_delay_seconds", value, quantile=q)

    # Label-free estimate (the scores are calibrated probabilities), and its gap to the
    # realised metrics on the same labelled predictions.
    if n >= mins.estimate:
        est = stats.cbpe(win.probability, win.predicted)
        put("spoiler_model_estimated_accuracy", est.accuracy)
        put("spoiler_model_estimated_f1", est.f1)
        if ref is not None and "accuracy" in ref.floors:
            # The estimate has (almost) no sampling error of its own: reading the
            # accuracy floor at the window's prediction count is the conservative side.
            put("spoiler_model_quality_floor", ref.floors["accuracy"].floor.at(n),
                metric="estimated_accuracy")
    if len(lab) >= mins.labelled:
        est_lab = stats.cbpe(lab.probability, lab.predicted)
        put("spoiler_model_estimated_accuracy_error", est_lab.accuracy - realised["accuracy"])
        put("spoiler_model_estimated_f1_error", est_lab.f1 - realised["f1"])
        if ref is not None:
            # Calibrated scores: the gap is sampling error (z standard errors) plus at most
            # the calibration error the test split can vouch for. Beyond it, P(y | x) changed.
            accuracy_limit, f1_limit = stats.estimate_error_limits(
                lab.probability, lab.predicted, ref.calibration_error,
                ref.calibration_level_error, ref.z)
            put("spoiler_model_estimated_accuracy_error_limit", accuracy_limit)
            put("spoiler_model_estimated_f1_error_limit", f1_limit)

    # Drift of scores and inputs against the bundle's reference histograms.
    for feature in FEATURES:
        values = win.feature(feature)
        values = values[~np.isnan(values)]
        if len(values):
            put("spoiler_input_mean", float(np.mean(values)), feature=feature)
        hist = ref.histograms.get(feature) if ref is not None else None
        if ref is None or hist is None or len(values) < FEATURES[feature].min_sample:
            continue
        current = drift.histogram(values, hist.edges)
        put("spoiler_drift_sample_size", len(values), feature=feature)
        for stat in FEATURES[feature].statistics:
            put(f"spoiler_drift_{stat}", drift.statistic(stat, hist.counts, current),
                feature=feature)
            put("spoiler_drift_threshold", ref.threshold_at(feature, stat, len(values)),
                feature=feature, statistic=stat)
        shares = current / current.sum()
        for upper, share in zip(hist.edges[1:], shares, strict=True):
            put("spoiler_drift_bin_share", float(share), feature=feature, le=_fmt(upper))
    return out


def reference_samples(reference: Reference) -> list[Sample]:
    """Constant series describing the reference, for rules and comparison panels."""
    labels = {"model_version": reference.model_version, "model_name": reference.model_name,
              "calibration": reference.calibration}
    out = [Sample("spoiler_model_reference_info", labels, 1.0)]
    mv = {"model_version": reference.model_version}
    if reference.training_spoiler_rate is not None:
        out.append(Sample("spoiler_model_training_spoiler_rate", mv,
                          reference.training_spoiler_rate))
    if reference.predicted_spoiler_ratio is not None:
        out.append(Sample("spoiler_model_expected_predicted_spoiler_ratio", mv,
                          reference.predicted_spoiler_ratio))
    out.append(Sample("spoiler_model_threshold", mv, reference.threshold))
    for metric, value in reference.metrics.items():
        if metric.replace("_", "").isalnum() and not math.isnan(value):
            out.append(Sample("spoiler_model_reference_metric", {**mv, "metric": metric}, value))
    for feature, hist in reference.histograms.items():
        for upper, share in zip(hist.edges[1:], hist.shares(), strict=True):
            out.append(Sample("spoiler_drift_reference_bin_share",
                              {**mv, "feature": feature, "le": _fmt(upper)}, float(share)))
    return out


def _fmt(edge: float) -> str:
    return f"{edge:g}"


__all__ = ["MinCounts", "Rows", "Sample", "compute", "empty_rows", "reference_samples"]
