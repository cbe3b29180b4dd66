"""One window of one model version: rows in, Prometheus samples out.

Minimum counts (settings, defaults in brackets) below which a statistic is
*absent* rather than 0 or 1:

- accuracy, F1 and the estimate's error: `min_labelled` labelled predictions [30];
- precision: `min_class` predicted spoilers; recall: `min_class` actual spoilers;
  ROC-AUC: `min_class` of each actual class [5];
- PSI / KS: `min_drift` values of that feature [50];
- CBPE estimate: `min_estimate` predictions [30];
- label delay quantiles: `min_delay` labels [10].
Counts themselves (predictions, labelled, confusion cells) are always reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitoring import stats
from monitoring.reference import Reference


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class MinCounts:
    labelled: int = 30
    per_class: int = 5
    drift: int = 50
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
    """Every model/drift sample for the predictions made in (now - seconds, now]."""
    labels = {"window": window, "model_version": model_version}
    out: list[Sample] = []

    def put(name: str, value: float, **extra: str) -> None:
        if not math.isnan(value):
            out.append(Sample(name, {**labels, **extra}, float(value)))

    win = rows.select(rows.predicted_at > now - seconds)
    n = len(win)
    put("spoiler_model_predictions", n)
    if n:
        put("spoiler_model_predicted_spoiler_ratio", float(np.mean(win.predicted)))

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
    for metric, value in stats.classification_metrics(
            conf, mins.labelled, mins.per_class).items():
        put(f"spoiler_model_{metric}", value)
    put("spoiler_model_roc_auc", stats.roc_auc(actual, lab.probability, mins.per_class))
    if len(lab) >= mins.labelled:
        put("spoiler_model_actual_spoiler_ratio", float(np.mean(actual)))

    # Label delay of the labels that arrived in the window.
    arrived = rows.select(rows.labelled_at > now - seconds)
    delays = arrived.labelled_at - arrived.produced_at
    for q, value in zip(("0.5", "0.95"), stats.quantiles(delays, (0.5, 0.95), mins.delay),
                        strict=True):
        put("spoiler_model_label_delay_seconds", value, quantile=q)

    # Label-free estimate, and its error where labels have arrived.
    calibration = reference.calibration if reference else None
    if n >= mins.estimate:
        est = stats.cbpe(win.probability, win.threshold, calibration)
        put("spoiler_model_estimated_accuracy", est.accuracy)
        put("spoiler_model_estimated_f1", est.f1)
    if len(lab) >= mins.labelled:
        est_lab = stats.cbpe(lab.probability, lab.threshold, calibration)
        realised = stats.classification_metrics(conf, mins.labelled, mins.per_class)["accuracy"]
        put("spoiler_model_estimated_accuracy_error", est_lab.accuracy - realised)

    # Drift of scores and inputs against the bundle's reference histograms.
    for feature in ("score", "text_words", "rating", "unknown_token_share", "empty_summary"):
        values = win.feature(feature)
        values = values[~np.isnan(values)]
        if len(values):
            put("spoiler_input_mean", float(np.mean(values)), feature=feature)
        hist = reference.histograms.get(feature) if reference else None
        if hist is None or len(values) < mins.drift:
            continue
        current = stats.histogram(values, hist.edges)
        put("spoiler_drift_psi", stats.psi(hist.counts, current), feature=feature)
        put("spoiler_drift_ks", stats.ks_binned(hist.counts, current), feature=feature)
        shares = current / current.sum()
        for upper, share in zip(hist.edges[1:], shares, strict=True):
            put("spoiler_drift_bin_share", float(share), feature=feature, le=_fmt(upper))
    return out


def reference_samples(reference: Reference) -> list[Sample]:
    """Constant series describing the reference, for thresholds and comparison panels."""
    labels = {"model_version": reference.model_version, "model_name": reference.model_name}
    out = [Sample("spoiler_model_reference_info", labels, 1.0)]
    mv = {"model_version": reference.model_version}
    if reference.training_spoiler_rate is not None:
        out.append(Sample("spoiler_model_training_spoiler_rate", mv,
                          reference.training_spoiler_rate))
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
