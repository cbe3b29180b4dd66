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


# -- an own Prometheus for the tests (never the shared one on 9090) -------------------
RULES_DIR = Path(__file__).resolve().parents[3] / "infra" / "prometheus" / "rules"


def render_rules(dst: Path, window: str, for_: str) -> Path:
    """Copy the real rule files, with the alerts' window and `for:` made test-sized."""
    import re

    import yaml

    dst.mkdir(parents=True, exist_ok=True)
    for file in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(file.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule["expr"] = re.sub(r'window="[^"]+"', f'window="{window}"', rule["expr"])
                if "for" in rule:
                    rule["for"] = for_
        (dst / file.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst


class OwnPrometheus:
    """A Prometheus process on a free port with a generated config; stopped by its PID."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.pidfile = root / "prometheus.pid"
        self.log = root / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, targets: dict[str, list[str]], rules: Path | None,
              interval: str = "1s") -> None:
        import yaml

        from devstack import prometheus

        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval,
                       "scrape_timeout": interval},
            "rule_files": [f"{rules}/*.yml"] if rules else [],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": addrs}]}
                               for job, addrs in targets.items()],
        }
        conf = self.root / "prometheus.yml"
        conf.write_text(yaml.safe_dump(config, sort_keys=False))
        prometheus.check_config(conf)
        prometheus.start(conf, self.root / "data", self.port, self.log, self.pidfile, 60.0)

    def stop(self) -> None:
        from devstack.procs import stop_pid

        stop_pid(self.pidfile, "test Prometheus", timeout_s=10)

    def get(self, path: str, **params: str) -> Any:
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def firing(self) -> list[dict[str, str]]:
        return [a["labels"] for a in self.get("/api/v1/alerts")["alerts"]
                if a["state"] == "firing"]


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
