"""Fixtures for the monitoring integration tests: a migrated database and a seeder."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack import promtest
from spoiler_common.bundle import BundleManifest, write_manifest
from spoiler_common.settings import PostgresSettings

Seeder = Callable[..., None]

# Validation-like values per feature; the reference histograms use the shared bins.
REFERENCE_VALUES: dict[str, Sequence[float]] = {
    "score": [0.05] * 50 + [0.3] * 15 + [0.5] * 10 + [0.7] * 10 + [0.9] * 15,
    "text_words": [30] * 10 + [80] * 25 + [150] * 35 + [300] * 20 + [500] * 10,
    "rating": [1] * 8 + [3] * 6 + [5] * 9 + [7] * 19 + [10] * 58,
    "unknown_token_share": [0.0] * 90 + [0.015] * 8 + [0.07] * 2,
    "empty_summary": [0.0] * 98 + [1.0] * 2,
}


def reference_meta() -> dict[str, Any]:
    """A format-2 bundle.json with only what the monitor reads (no model files)."""
    from spoiler_common import drift

    counts = {name: drift.histogram(values, drift.FEATURES[name].edges)
              for name, values in REFERENCE_VALUES.items()}
    sizes = [30, 100, 1000, 10000]
    return {
        "format_version": 2, "name": "tiny", "version": "v1", "threshold": 0.5,
        "created_at": "2026-01-01T00:00:00Z", "base_model": "tiny:distilbert",
        "max_length": 128, "files": {}, "training_spoiler_rate": 0.25,
        "confusion_matrix": {"tn": 60, "fp": 10, "fn": 10, "tp": 20},
        "metrics": {"accuracy": 0.9, "f1_spoiler": 0.7, "ece": 0.03, "n": 100,
                    "roc_auc": 0.9, "pr_auc": 0.8, "macro_f1": 0.8, "brier": 0.1,
                    "precision_spoiler": 0.7, "recall_spoiler": 0.7, "spoiler_rate": 0.3},
        "calibration": {"method": "identity", "params": {}},
        "reference": {"source": "validation", "n": 100, "features": {
            name: {"edges": list(drift.FEATURES[name].edges), "counts": c.tolist()}
            for name, c in counts.items()}},
        "drift_thresholds": {"alpha": 0.01, "family_alpha": 0.01, "statistics": 7,
                             "draws": 500, "method": "bootstrap", "sizes": sizes,
                             "features": drift.thresholds_for(counts, sizes, draws=500)},
        "quality_floors": {"z": 3.0, "source": "test", "n": 100, "sizes": sizes, "metrics": {
            "accuracy": {"expected": 0.9, "floor": [0.7, 0.8, 0.81, 0.81]},
            "f1_spoiler": {"expected": 0.7, "floor": [0.3, 0.4, 0.55, 0.56]}}},
    }


@pytest.fixture(scope="session")
def proof_bundle(pytestconfig: pytest.Config) -> Path:
    """The alert proof's bundle (the tiny recipe on more reviews: devstack.alert_proof)."""
    from devstack.alert_proof import proof_bundle as build

    return build(Path(pytestconfig.cache.mkdir("proof-bundle")))


@pytest.fixture
def monitor_pg(pg_settings: PostgresSettings) -> PostgresSettings:
    """A fresh database with the sink's schema applied by the sink's own migrations."""
    from sink.migrate import migrate

    migrate(pg_settings.conninfo())
    return pg_settings


@pytest.fixture
def seed(monitor_pg: PostgresSettings) -> Seeder:
    """Insert reviews, predictions, labels and dead letters; times are seconds before now()."""

    def _seed(reviews: Iterable[dict[str, Any]] = (), predictions: Iterable[dict[str, Any]] = (),
              labels: Iterable[dict[str, Any]] = (), dead_letters: int = 0) -> None:
        with psycopg.connect(monitor_pg.conninfo()) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reviews (review_id, movie_id, user_id, review_date, rating, "
                "review_summary, review_text, text_words, produced_at) VALUES (%(review_id)s, "
                "%(movie_id)s, %(user_id)s, %(review_date)s, %(rating)s, %(review_summary)s, "
                "%(review_text)s, %(text_words)s, now() - make_interval(secs => %(age)s))",
                list(reviews))
            cur.executemany(
                "INSERT INTO predictions (review_id, model_version, model_name, "
                "spoiler_probability, is_spoiler, threshold, produced_at, predicted_at, "
                "inference_ms, queue_ms, end_to_end_ms, input_tokens, unknown_tokens) VALUES "
                "(%(review_id)s, %(model_version)s, 'tiny', %(p)s, %(p)s >= %(threshold)s, "
                "%(threshold)s, now() - make_interval(secs => %(age)s + 1), "
                "now() - make_interval(secs => %(age)s), 5, 1, 1000, %(input_tokens)s, "
                "%(unknown_tokens)s)",
                list(predictions))
            cur.executemany(
                "INSERT INTO labels (review_id, is_spoiler, labelled_at, source) VALUES "
                "(%(review_id)s, %(is_spoiler)s, now() - make_interval(secs => %(age)s), "
                "'test')",
                list(labels))
            for i in range(dead_letters):
                cur.execute(
                    "INSERT INTO dead_letters (dlq_partition, dlq_offset, service, reason, error, "
                    "source_topic, source_partition, source_offset, value, value_encoding, "
                    "failed_at) VALUES (0, %s, 'stream_processor', 'invalid_json', 'bad', "
                    "'spoiler-reviews', 0, %s, 'x', 'utf-8', now())", (i, i))

    return _seed


@pytest.fixture
def reference_bundle(tmp_path: Path) -> Path:
    """A bundle.json with only what the monitor reads (no model files)."""
    path = tmp_path / "bundle"
    path.mkdir()
    write_manifest(path, BundleManifest.from_json(reference_meta()))
    return path


# -- an own Prometheus for the tests (never the shared one on 9090) -------------------
OwnPrometheus = promtest.OwnPrometheus
render_rules = promtest.render_rules


@pytest.fixture
def own_prometheus(tmp_path: Path, free_port: int) -> Any:
    prom = OwnPrometheus(tmp_path / "prometheus", free_port)
    prom.root.mkdir()
    yield prom
    prom.stop()


@pytest.fixture
def rendered_rules() -> Callable[[Path, str, str], Path]:
    """`render_rules` as a fixture (test modules cannot import conftest)."""
    return render_rules
