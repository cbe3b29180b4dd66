"""Prometheus exposition of the monitor's latest results.

Each recomputation replaces the whole set of samples at once, so a series that
stopped being defined (a window that became too small, a model version that
left every window) disappears instead of keeping a stale value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring.window import Sample

# name -> (help, label names). Every sample the monitor produces must be declared here.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "spoiler_model_predictions": (
        "Predictions made in the window.", ("window", "model_version")),
    "spoiler_model_labelled": (
        "Predictions in the window whose ground-truth label has arrived.",
        ("window", "model_version")),
    "spoiler_model_labelled_fraction": (
        "Share of the window's predictions that have a label.", ("window", "model_version")),
    "spoiler_model_confusion": (
        "Confusion-matrix counts of the labelled predictions (spoiler = positive).",
        ("window", "model_version", "cell")),
    "spoiler_model_accuracy": ("Accuracy on labelled predictions.", ("window", "model_version")),
    "spoiler_model_precision": ("Precision of the spoiler class.", ("window", "model_version")),
    "spoiler_model_recall": ("Recall of the spoiler class.", ("window", "model_version")),
    "spoiler_model_f1": ("F1 of the spoiler class.", ("window", "model_version")),
    "spoiler_model_roc_auc": (
        "ROC-AUC (only with both classes present).", ("window", "model_version")),
    "spoiler_model_actual_spoiler_ratio": (
        "Share of labelled predictions that are spoilers.", ("window", "model_version")),
    "spoiler_model_predicted_spoiler_ratio": (
        "Share of predictions that say spoiler.", ("window", "model_version")),
    "spoiler_model_label_delay_seconds": (
        "Seconds from review publication to label arrival, for labels arrived in the window.",
        ("window", "model_version", "quantile")),
    "spoiler_model_estimated_accuracy": (
        "Label-free (CBPE) accuracy estimate over all the window's predictions.",
        ("window", "model_version")),
    "spoiler_model_estimated_f1": (
        "Label-free (CBPE) F1 estimate over all the window's predictions.",
        ("window", "model_version")),
    "spoiler_model_estimated_accuracy_error": (
        "CBPE estimate minus realised accuracy, on the labelled predictions.",
        ("window", "model_version")),
    "spoiler_model_estimated_f1_error": (
        "CBPE estimate minus realised F1, on the labelled predictions.",
        ("window", "model_version")),
    "spoiler_model_estimated_accuracy_error_limit": (
        "Largest gap |estimated - realised accuracy| calibrated scores explain: the test "
        "split's calibration error (or the accuracy moved by the calibration's level error, "
        "if larger) plus z standard errors at the window's labelled n.",
        ("window", "model_version")),
    "spoiler_model_estimated_f1_error_limit": (
        "Largest gap |estimated - realised F1| calibrated scores explain: the F1 moved by "
        "the calibration's level error plus z standard errors at the window's labelled n.",
        ("window", "model_version")),
    "spoiler_model_quality_floor": (
        "Floor of a quality metric at the window's n, from the bundle's quality_floors "
        "(metric=accuracy|f1 at the labelled n; estimated_accuracy at the prediction n).",
        ("window", "model_version", "metric")),
    "spoiler_model_predicted_spoiler_ratio_tolerance": (
        "Largest |predicted spoiler ratio - expected| sampling explains at the window's n "
        "(z standard errors of both the window and the test split).",
        ("window", "model_version")),
    "spoiler_model_expected_predicted_spoiler_ratio": (
        "Share of predicted spoilers on the bundle's test split.", ("model_version",)),
    "spoiler_input_mean": (
        "Mean of an input feature (or the score) in the window.",
        ("window", "model_version", "feature")),
    "spoiler_drift_psi": (
        "Population stability index against the bundle's reference histogram.",
        ("window", "model_version", "feature")),
    "spoiler_drift_ks": (
        "Two-sample Kolmogorov-Smirnov statistic against the reference (binned).",
        ("window", "model_version", "feature")),
    "spoiler_drift_chi2": (
        "Pearson chi-squared statistic of homogeneity against the reference (categorical "
        "features).", ("window", "model_version", "feature")),
    "spoiler_drift_threshold": (
        "Value of the statistic a same-size sample of the reference exceeds only alpha of "
        "the time (the bundle's drift_thresholds, read at the window's n).",
        ("window", "model_version", "feature", "statistic")),
    "spoiler_drift_sample_size": (
        "Values of the feature in the window that its drift statistics use.",
        ("window", "model_version", "feature")),
    "spoiler_drift_bin_share": (
        "Share of the window's values in the reference bin ending at `le`.",
        ("window", "model_version", "feature", "le")),
    "spoiler_drift_reference_bin_share": (
        "Share of the reference in the bin ending at `le`.",
        ("model_version", "feature", "le")),
    "spoiler_model_reference_info": (
        "The bundle the reference comes from (value 1) and how its scores are calibrated.",
        ("model_version", "model_name", "calibration")),
    "spoiler_model_reference_metric": (
        "Test-split metric recorded in the bundle.", ("model_version", "metric")),
    "spoiler_model_training_spoiler_rate": (
        "Spoiler rate of the training data.", ("model_version",)),
    "spoiler_model_threshold": ("Decision threshold of the bundle.", ("model_version",)),
    "spoiler_pipeline_freshness_seconds": (
        "Age of the newest stored prediction.", ()),
    "spoiler_pipeline_dead_letters": (
        "Dead letters stored in the window.", ("window", "service", "reason")),
    "spoiler_pipeline_dead_letter_ratio": (
        "Dead letters / (dead letters + stored reviews) in the window.", ("window",)),
    "spoiler_pipeline_reviews_stored": ("Reviews stored in the window.", ("window",)),
    "spoiler_kafka_consumer_lag": (
        "Messages not yet committed by the group, summed over the topic's partitions.",
        ("group", "topic")),
    "spoiler_monitor_window_truncated": (
        "1 when the longest window had more rows than SPOILER_MONITOR_MAX_ROWS.", ()),
    "spoiler_monitor_last_success_timestamp_seconds": (
        "When the last recomputation finished without error.", ()),
    **{
        # Champion vs challenger (shadow scoring) on the same labelled reviews
        # (monitoring/comparison.py); everything but the count needs
        # SPOILER_MONITOR_MIN_COMPARISON_LABELS labelled reviews.
        f"spoiler_comparison_{metric}": (
            f"{title} of each model (role) on the labelled reviews both scored.",
            ("window", "champion_version", "challenger_version", "role"))
        for metric, title in (("accuracy", "Accuracy"), ("f1", "F1 of the spoiler class"),
                              ("roc_auc", "ROC-AUC"))
    },
    "spoiler_comparison_labelled": (
        "Labelled reviews both the champion and the challenger scored in the window.",
        ("window", "champion_version", "challenger_version")),
    "spoiler_comparison_difference": (
        "Challenger minus champion of a metric (accuracy, f1, roc_auc) on the same reviews.",
        ("window", "champion_version", "challenger_version", "metric")),
    "spoiler_comparison_difference_low": (
        "Lower bound of the paired-bootstrap confidence interval (1 - alpha) of the difference.",
        ("window", "champion_version", "challenger_version", "metric")),
    "spoiler_comparison_difference_high": (
        "Upper bound of the paired-bootstrap confidence interval (1 - alpha) of the difference.",
        ("window", "champion_version", "challenger_version", "metric")),
    "spoiler_comparison_agreement": (
        "Share of the compared reviews both models label the same.",
        ("window", "champion_version", "challenger_version")),
    "spoiler_comparison_mcnemar_p_value": (
        "McNemar mid-p value (two-sided) of equal accuracy, from the discordant reviews.",
        ("window", "champion_version", "challenger_version")),
    "spoiler_comparison_discordant": (
        "Reviews only one model labelled right (`right` = which one).",
        ("window", "champion_version", "challenger_version", "right")),
    "spoiler_comparison_verdict": (
        "1: the challenger is significantly more accurate (McNemar at alpha), -1: less, 0: "
        "no significant difference.", ("window", "champion_version", "challenger_version")),
}


class SnapshotCollector(Collector):
    """Serves the latest list of samples; `replace` swaps it atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: list[Sample] = []

    def replace(self, samples: Iterable[Sample]) -> None:
        new = list(samples)
        for s in new:
            if s.name not in METRICS:
                raise KeyError(f"undeclared metric {s.name}")
        with self._lock:
            self._samples = new

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_name: dict[str, list[Sample]] = {}
        for s in self.samples():
            by_name.setdefault(s.name, []).append(s)
        for name, items in by_name.items():
            help_text, labelnames = METRICS[name]
            family = GaugeMetricFamily(name, help_text, labels=list(labelnames))
            for s in items:
                family.add_metric([s.labels.get(k, "") for k in labelnames], s.value)
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class MonitorMetrics:
    """The monitor's registry: computed samples plus its own operational metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.snapshot = SnapshotCollector()
        self.registry.register(self.snapshot)
        self.runs = Counter("spoiler_monitor_runs_total", "Recomputations by result.",
                            ["result"], registry=self.registry)
        self.errors = Counter("spoiler_monitor_errors_total", "Failures by stage.",
                              ["stage"], registry=self.registry)
        self.duration = Histogram("spoiler_monitor_run_seconds", "Time one recomputation took.",
                                  registry=self.registry,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.up = Gauge("spoiler_monitor_up", "1 while the monitor loop runs.",
                        registry=self.registry)


__all__ = ["METRICS", "MonitorMetrics", "SnapshotCollector"]
