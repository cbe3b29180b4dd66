"""Settings of the monitor service (env prefix ``SPOILER_MONITOR_``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from spoiler_common.settings import BundleSettings, settings_config


def parse_duration(text: str) -> float:
    """'30s', '5m', '1h', '1d' or plain seconds -> seconds."""
    text = text.strip()
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    try:
        scale = units.get(text[-1:], 0.0)
        value = float(text[:-1]) * scale if scale else float(text)
    except ValueError as exc:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h, 1d)") from exc
    if value <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return value


class MonitorSettings(BundleSettings):
    """The monitor: which windows, how often, against which reference, and its minimum counts.

    `bundle_path` (the shared SPOILER_BUNDLE_PATH) is the bundle directory, or its
    bundle.json, whose reference, thresholds and floors the monitor compares with.
    """

    model_config = settings_config("MONITOR_")
    deprecated_env = ("SPOILER_MONITOR_BUNDLE_PATH",)

    interval_s: float = Field(15.0, gt=0, description="Seconds between two recomputations.")
    windows: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["5m", "1h", "24h"],
        description="Sliding windows (comma-separated durations such as `5m,1h,24h`); each "
        "becomes the `window` label value.",
    )
    metrics_host: str = Field("0.0.0.0", description="Address the /metrics endpoint binds.")
    metrics_port: int = Field(9103, ge=1, le=65535, description="Port of the /metrics endpoint.")
    max_rows: int = Field(
        500_000, gt=0,
        description="Most rows read per recomputation (newest first); a window with more rows "
        "is computed on the newest ones and `spoiler_monitor_window_truncated` says so.",
    )
    min_labelled: int = Field(
        30, ge=1, description="Labelled predictions a window needs before accuracy, precision, "
        "recall and F1 are reported.",
    )
    min_class: int = Field(
        5, ge=1, description="Predictions needed in each class before ROC-AUC (both actual "
        "classes), precision (predicted positives) and recall (actual positives) are reported.",
    )
    min_estimate: int = Field(
        30, ge=1, description="Predictions a window needs before the label-free (CBPE) estimate.",
    )
    min_delay: int = Field(
        10, ge=1, description="Labels a window needs before label delay quantiles are reported.",
    )
    min_comparison_labels: int = Field(
        100, ge=10, description="Labelled reviews both the champion and the challenger scored "
        "a window needs before their comparison (metrics, differences, p-value, verdict) is "
        "reported.",
    )
    comparison_alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="Significance level of the champion/challenger "
        "verdict (McNemar) and 1 - the confidence of the difference intervals.",
    )
    comparison_draws: int = Field(
        1000, ge=100, le=20_000, description="Paired-bootstrap resamples per comparison.",
    )
    comparison_max_rows: int = Field(
        20_000, ge=100, description="Most labelled reviews (newest) a window's comparison uses.",
    )
    comparison_interval_s: float = Field(
        60.0, gt=0, description="Seconds between two recomputations of the comparison (the "
        "bootstrap is the monitor's costliest step); the last result is exported meanwhile.",
    )
    alert_window: str = Field(
        "1h", description="The window the alert rules watch (`window=\"1h\"` in "
        "infra/prometheus/rules/model.yml); one of the windows. The Grafana notifier "
        "annotates drift in this window only, when a statistic crosses its threshold.",
    )
    consumer_groups: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Consumer groups whose lag is exported (comma-separated); empty = every "
        "group that has committed offsets on the pipeline's topics.",
    )
    kafka_lag: bool = Field(True, description="Export Kafka consumer lag (needs the broker).")
    grafana_url: str | None = Field(
        None, description="Grafana base URL for annotations and `push-dashboards`; unset = off.",
    )
    grafana_token: SecretStr | None = Field(
        None, description="Grafana service-account token (secret); or use user/password.",
    )
    grafana_user: str | None = Field(None, description="Grafana basic-auth user.")
    grafana_password: SecretStr | None = Field(
        None, description="Grafana basic-auth password (secret)."
    )
    log_level: str = Field("INFO", description="Log level of the monitor.")

    @field_validator("windows", "consumer_groups", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                return json.loads(stripped)
            return [part.strip() for part in stripped.split(",") if part.strip()]
        return value

    @field_validator("windows")
    @classmethod
    def _check_windows(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("SPOILER_MONITOR_WINDOWS needs at least one window, e.g. 5m,1h,24h")
        for item in value:
            parse_duration(item)
        return value

    @model_validator(mode="after")
    def _check_alert_window(self) -> MonitorSettings:
        if self.alert_window not in self.windows:
            raise ValueError(
                f"SPOILER_MONITOR_ALERT_WINDOW={self.alert_window} is not one of "
                f"SPOILER_MONITOR_WINDOWS ({','.join(self.windows)}): add it there, or set "
                "the window the alert rules use")
        return self

    def window_seconds(self) -> dict[str, float]:
        """Window label -> length in seconds."""
        return {name: parse_duration(name) for name in self.windows}


__all__ = ["MonitorSettings", "parse_duration"]
