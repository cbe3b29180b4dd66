"""The autopilot's decisions on rows in a real (migrated) PostgreSQL.

Predictions and labels are inserted as the sink stores them; the bundles are
bundle.json files only (the decisions read thresholds and quality floors, and
`enabled=false` never loads a model)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from sink.migrate import migrate
from spoiler_common.settings import PostgresSettings
from training import autopilot, serving
from training.settings import AutopilotSettings, TrainingSettings

pytestmark = pytest.mark.integration
FLOORS = {"z": 3.0, "source": "test", "n": 450, "sizes": [30, 100, 1000],
          "metrics": {"accuracy": {"expected": 0.9, "floor": [0.75, 0.8, 0.85]}}}


def bundle(path: Path, version: str) -> Path:
    path.mkdir(parents=True)
    (path / "bundle.json").write_text(json.dumps({
        "format_version": 2, "name": "n", "version": version, "max_length": 8,
        "threshold": 0.5, "files": {}, "quality_floors": FLOORS,
        "created_at": "2026-12-01T12:00:00+00:00", "base_model": "tiny"}))
    return path


def insert(pg: PostgresSettings, version: str, labels: np.ndarray, correct: np.ndarray,
           start: datetime, prefix: str = "r") -> None:
    rows = []
    for i, (y, ok) in enumerate(zip(labels, correct, strict=True)):
        predicted = bool(y) if ok else not bool(y)
        rows.append((f"{prefix}{i}", version, "n", 0.9 if predicted else 0.1, predicted, 0.5,
                     start, start + timedelta(seconds=i / 10), 1.0, 1.0, 2.0))
    with psycopg.connect(pg.conninfo()) as conn:
        conn.cursor().executemany(
            "INSERT INTO predictions (review_id, model_version, model_name, spoiler_probability,"
            " is_spoiler, threshold, produced_at, predicted_at, inference_ms, queue_ms, "
            "end_to_end_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        conn.cursor().executemany(
            "INSERT INTO labels (review_id, is_spoiler, labelled_at, source) VALUES "
            "(%s, %s, %s, 'test') ON CONFLICT DO NOTHING",
            [(f"{prefix}{i}", bool(y), start) for i, y in enumerate(labels)])


def test_autopilot_promotes_on_evidence_and_rolls_back_below_the_floor(
    pg_settings: PostgresSettings, tmp_path: Path,
) -> None:
    migrate(pg_settings.conninfo())
    models = tmp_path / "models"
    settings = TrainingSettings(bundle_path=models / "serving",
                                challenger_path=models / "challenger",
                                versions_dir=models / "versions")
    serving.point(settings.bundle_path, bundle(models / "versions" / "v1", "v1"),
                  settings.versions_dir)
    serving.point(settings.challenger_path, bundle(models / "versions" / "v2", "v2"),
                  settings.versions_dir)
    rng = np.random.default_rng(0)
    n = 600
    labels = rng.random(n) < 0.3
    now = datetime.now(UTC) - timedelta(minutes=5)
    insert(pg_settings, "v1", labels, rng.random(n) < 0.75, now)
    insert(pg_settings, "v2", labels, rng.random(n) < 0.9, now)
    auto = AutopilotSettings(min_labels=500, enabled=False)

    check = autopilot.step(auto, settings, "spoiler-detector", pg_settings)
    assert check.decision == "promote" and check.details["n"] == n
    assert check.details["accuracy_diff"] > 0.05 and check.details["mcnemar_p"] < 0.05
    # Disabled: it said what it would do, and did nothing.
    assert serving.bundle_version(settings.bundle_path) == "v1"

    # More labels needed than there are: hold.
    assert autopilot.decide(AutopilotSettings(min_labels=n + 1), settings,
                            pg_settings).decision == "hold"

    # After a promotion to v2, v2 serves new reviews at 60 % accuracy: below its floor.
    happened = datetime.now(UTC) - timedelta(minutes=2)
    history = models / "promotions.jsonl"
    history.write_text(json.dumps({"action": "promote", "from_version": "v1",
                                   "to_version": "v2",
                                   "happened_at": happened.isoformat()}) + "\n")
    serving.point(settings.bundle_path, models / "versions" / "v2", settings.versions_dir)
    later = rng.random(200) < 0.3
    insert(pg_settings, "v2", later, rng.random(200) < 0.6, happened + timedelta(seconds=5),
           prefix="late")
    check = autopilot.decide(AutopilotSettings(rollback_min_labels=100), settings, pg_settings)
    assert check.decision == "rollback", check
    assert "below its floor" in check.reason and check.details["n"] == 200
