"""The whole pipeline on real services, started as `make up` starts them.

2,000 generated reviews with labels go through the real producer, broker,
stream worker (real exported bundle), sink and monitor; at the end every review
has exactly one stored row with a prediction from the bundle's version and its
label, Prometheus has the monitor's metrics, and the Kafka CLI shows the topics
and the worker's consumer group with zero lag.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec
from tests.e2e.conftest import PY, ServiceProcess, http_ok, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
N_REVIEWS = 2000
BIN = REPO_ROOT / "bin"


def pipeline_env(kafka: KafkaSettings, pg: PostgresSettings, unique_id: str) -> dict[str, str]:
    assert pg.password is not None
    return {
        "SPOILER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SPOILER_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SPOILER_PG_HOST": pg.host,
        "SPOILER_PG_PORT": str(pg.port),
        "SPOILER_PG_DATABASE": pg.database,
        "SPOILER_PG_USER": pg.user,
        "SPOILER_PG_PASSWORD": pg.password.get_secret_value(),
        "SPOILER_SINK_GROUP_ID": f"e2e-sink-{unique_id}",
        "SPOILER_WORKER_APP_ID": f"e2e-worker-{unique_id}",
    }


def counts(pg: PostgresSettings) -> dict[str, int]:
    with psycopg.connect(pg.conninfo()) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("reviews", "predictions", "labels")
        }


def group_lag(bootstrap: str, group: str) -> list[int]:
    out = subprocess.run(
        [BIN / "kafka-consumer-groups", "--bootstrap-server", bootstrap, "--describe",
         "--group", group], capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    lines = [line.split() for line in out.splitlines() if line.strip()]
    header = next(i for i, cols in enumerate(lines) if "LAG" in cols)
    lag_col = lines[header].index("LAG")
    return [int(cols[lag_col]) for cols in lines[header + 1:] if cols[lag_col].isdigit()]


def test_two_thousand_reviews_end_to_end(
    kafka_settings: KafkaSettings,
    topics: dict[str, TopicSpec],
    pg_settings: PostgresSettings,
    tiny_bundle: Path,
    unique_id: str,
    tmp_path: Path,
    service_factory: Callable[..., ServiceProcess],
    ports: Callable[[], int],
    own_prometheus_factory: Callable[..., object],
) -> None:
    env = pipeline_env(kafka_settings, pg_settings, unique_id)
    bundle = json.loads((tiny_bundle / "bundle.json").read_text())
    sink_port, worker_port, monitor_port = ports(), ports(), ports()

    sink = service_factory("sink", ["-m", "sink", "run"],
                           {**env, "SPOILER_SINK_METRICS_PORT": str(sink_port)}).start()
    worker = service_factory("worker", ["-m", "stream_processor", "worker"], {
        **env, "SPOILER_BUNDLE_PATH": str(tiny_bundle),
        "SPOILER_WORKER_WEB_PORT": str(worker_port),
        "SPOILER_WORKER_DATADIR": str(tmp_path / "faust")}).start()
    monitor = service_factory("monitor", ["-m", "monitoring", "run"], {
        **env, "SPOILER_BUNDLE_PATH": str(tiny_bundle),
        "SPOILER_MONITOR_METRICS_PORT": str(monitor_port),
        "SPOILER_MONITOR_INTERVAL_S": "2"}).start()
    services = [sink, worker, monitor]
    wait_for(lambda: http_ok(f"http://127.0.0.1:{sink_port}/healthz"), 90, "sink", services)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{worker_port}/readyz"), 120, "worker", services)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{monitor_port}/metrics"), 60, "monitor",
             services)
    prom = own_prometheus_factory({
        "sink": [f"127.0.0.1:{sink_port}"], "stream_processor": [f"127.0.0.1:{worker_port}"],
        "monitoring": [f"127.0.0.1:{monitor_port}"]})

    reviews = tmp_path / "reviews.jsonl"
    subprocess.run([PY, "-m", "producer", "synth", "--n", str(N_REVIEWS), "--seed", "3",
                    "--out", str(reviews)], check=True, cwd=REPO_ROOT, capture_output=True)
    replay = subprocess.run(
        [PY, "-m", "producer", "replay", str(reviews), "--label-delay", "0",
         "--metrics-port", "0", "--json"],
        env={**env, "PATH": "/usr/bin:/bin"}, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300,
    )
    assert replay.returncode == 0, replay.stderr[-2000:]

    expected = {"reviews": N_REVIEWS, "predictions": N_REVIEWS, "labels": N_REVIEWS}
    wait_for(lambda: counts(pg_settings) == expected, 600, f"{expected} stored rows", services,
             interval=2)

    truth = {}
    for line in reviews.read_text().splitlines():
        record = json.loads(line)
        truth[(record["movie_id"], record["user_id"], record["review_date"])] = record
    with psycopg.connect(pg_settings.conninfo()) as conn:
        rows = conn.execute(
            "SELECT o.review_id, o.model_version, o.actual_spoiler, o.spoiler_probability, "
            "r.movie_id, r.user_id, r.review_date "
            "FROM review_outcomes o JOIN reviews r USING (review_id)").fetchall()
        assert conn.execute("SELECT count(DISTINCT review_id) FROM predictions").fetchone() == (
            N_REVIEWS,)
    assert len(rows) == N_REVIEWS
    assert {row[1] for row in rows} == {bundle["version"]}
    assert all(0.0 <= row[3] <= 1.0 for row in rows)
    mismatched = [r for r in rows if truth[(r[4], r[5], r[6])]["is_spoiler"] != r[2]]
    assert not mismatched, f"labels differ from the source file: {mismatched[:3]}"

    def monitor_metrics_in_prometheus() -> bool:
        return bool(prom.query('spoiler_model_accuracy') and  # type: ignore[attr-defined]
                    prom.query('spoiler_worker_predictions_total') and  # type: ignore[attr-defined]
                    prom.query('spoiler_sink_rows_written_total'))  # type: ignore[attr-defined]
    wait_for(monitor_metrics_in_prometheus, 90, "monitor metrics in Prometheus", services)

    described = subprocess.run(
        [BIN / "kafka-topics", "--bootstrap-server", kafka_settings.bootstrap_servers,
         "--describe", "--topic", topics["reviews"].name],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(rf"PartitionCount:\s*{topics['reviews'].partitions}", described)
    worker_group = env["SPOILER_WORKER_APP_ID"]
    wait_for(lambda: set(group_lag(kafka_settings.bootstrap_servers, worker_group)) == {0},
             120, "zero lag of the worker's group", services, interval=3)
    assert all(s.alive for s in services), "a service died during the run"
