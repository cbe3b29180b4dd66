"""The drift annotation: the alert window only, the same threshold series the rules read."""

from __future__ import annotations

import pytest

from monitoring.service import Monitor
from monitoring.settings import MonitorSettings
from monitoring.window import Sample
from spoiler_common.settings import PostgresSettings

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self) -> None:
        self.drifts: list[tuple[str, str, str, str, float, float]] = []

    def model_version_changed(self, old: str | None, new: str) -> None:
        return None

    def drift(self, feature: str, statistic: str, window: str, model_version: str,
              value: float, threshold: float) -> None:
        self.drifts.append((feature, statistic, window, model_version, value, threshold))


def pair(stat: str, window: str, value: float, threshold: float,
         feature: str = "score") -> list[Sample]:
    labels = {"window": window, "model_version": "v1", "feature": feature}
    return [Sample(f"spoiler_drift_{stat}", labels, value),
            Sample("spoiler_drift_threshold", {**labels, "statistic": stat}, threshold)]


def monitor() -> tuple[Monitor, Recorder]:
    rec = Recorder()
    settings = MonitorSettings(windows=["5m", "1h"], alert_window="1h", kafka_lag=False,
                               grafana_url=None)
    return Monitor(settings=settings, pg=PostgresSettings(), kafka=None, notifier=rec), rec


def test_annotates_upward_crossings_of_the_alert_window_only() -> None:
    mon, rec = monitor()
    quiet = pair("psi", "1h", 0.1, 0.2) + pair("psi", "5m", 0.9, 0.3)
    mon._notify(None, quiet)
    assert rec.drifts == []  # the 5m window is far above its threshold: not annotated
    crossing = pair("psi", "1h", 0.25, 0.2) + pair("ks", "1h", 0.05, 0.1)
    mon._notify(None, crossing)
    mon._notify(None, crossing)  # still above: no second annotation
    assert rec.drifts == [("score", "psi", "1h", "v1", 0.25, 0.2)]
    mon._notify(None, pair("psi", "1h", 0.1, 0.2))
    mon._notify(None, pair("chi2", "1h", 40.0, 21.7, "rating") + pair("psi", "1h", 0.3, 0.2))
    assert rec.drifts[1:] == [("rating", "chi2", "1h", "v1", 40.0, 21.7),
                              ("score", "psi", "1h", "v1", 0.3, 0.2)]


def test_no_threshold_no_annotation() -> None:
    mon, rec = monitor()
    mon._notify(None, [Sample("spoiler_drift_psi",
                              {"window": "1h", "model_version": "v1", "feature": "score"}, 5.0)])
    assert rec.drifts == []


def test_alert_window_must_be_a_window() -> None:
    with pytest.raises(ValueError, match="SPOILER_MONITOR_ALERT_WINDOW=1h is not one of"):
        MonitorSettings(windows=["5m", "24h"], kafka_lag=False)
