"""Fixtures for the monitoring integration tests: a migrated database and a seeder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from spoiler_common.settings import PostgresSettings

Seeder = Callable[..., None]

REFERENCE = {
    "score": {"bins": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "counts": [50, 15, 10, 10, 15]},
    "text_words": {"bins": [0, 50, 100, 200, 400, 5000], "counts": [10, 25, 35, 20, 10]},
    "rating": {"bins": [0.5, 2.5, 4.5, 6.5, 8.5, 10.5], "counts": [8, 6, 9, 19, 58]},
    "unknown_token_share": {"bins": [0.0, 0.01, 0.05, 1.0], "counts": [90, 8, 2]},
    "empty_summary_share": 0.02,
}


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
    (path / "bundle.json").write_text(json.dumps({
        "format_version": 1, "name": "tiny", "version": "v1", "threshold": 0.5,
        "training_spoiler_rate": 0.25, "metrics": {"accuracy": 0.9},
        "reference": REFERENCE}))
    return path
