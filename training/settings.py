"""Settings of the training commands that act on a running deployment (`SPOILER_TRAINING_*`).

The pipeline's own knobs live in params files (DVC tracks them); these say
where the deployment keeps its bundles, where Grafana is, and the optional
automatic promotion policy (`SPOILER_AUTOPILOT_*`, off by default).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from spoiler_common.settings import REPO_ROOT, BundleSettings, settings_config

MODELS_DIR = REPO_ROOT / "models"


class TrainingSettings(BundleSettings):
    """Where bundles are installed, and where promotions are announced.

    The champion is the served bundle, SPOILER_BUNDLE_PATH (inherited): `promote` and
    `rollback` swap it as a link (a plain directory is converted on the first promotion).
    """

    model_config = settings_config("TRAINING_")
    deprecated_env = ()
    challenger_path: Path = Field(
        MODELS_DIR / "challenger",
        description="Where `retrain` installs the challenger (a link, like the serving one); "
        "point SPOILER_WORKER_CHALLENGER_PATH here to score it in shadow.",
    )
    versions_dir: Path = Field(
        MODELS_DIR / "versions",
        description="One directory per installed bundle version; the links point here.",
    )
    keep_versions: int = Field(
        5, ge=2, description="Installed versions kept; older ones not linked are removed.",
    )
    grafana_url: str | None = Field(
        None, description="Grafana base URL for promotion annotations; unset = none (the "
        "promotion is still recorded in PostgreSQL's `model_promotions`).",
    )
    grafana_token: SecretStr | None = Field(
        None, description="Grafana service-account token (secret) for the annotations.",
    )


class AutopilotSettings(BaseSettings):
    """`python -m training autopilot`: promote and roll back on evidence, when enabled."""

    model_config = settings_config("AUTOPILOT_")

    enabled: bool = Field(
        False, description="Act on the evidence (off: `autopilot` only reports what it would do).",
    )
    interval_s: float = Field(60.0, gt=0, description="Seconds between two checks.")
    min_labels: int = Field(
        500, ge=30, description="Labelled reviews both models scored before a promotion is "
        "considered.",
    )
    alpha: float = Field(
        0.05, gt=0, lt=0.5, description="Significance level of the champion-vs-challenger test.",
    )
    window_s: float = Field(
        86_400.0, gt=0, description="How far back the paired comparison and the live-quality "
        "check look (seconds).",
    )
    rollback_min_labels: int = Field(
        100, ge=30, description="Labelled reviews the new champion needs before its live "
        "quality is checked against its floor.",
    )


__all__ = ["MODELS_DIR", "AutopilotSettings", "TrainingSettings"]
