"""Promotion and rollback mid-stream: real broker, worker and sink; no review left unscored.

The worker serves models/serving (a plain directory, as older releases left
it); `python -m training promote DIR` swaps in a link to the new version while
reviews flow, `rollback` swaps back. Every review ends with exactly one stored
prediction, the versions switch once each way in predicted_at order, and
PostgreSQL's model_promotions holds both events.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from monitoring.dashboards import PROMOTIONS_SQL
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec
from tests.e2e.conftest import ServiceProcess, start_sink_and_worker, wait_for
from tests.e2e.test_e2e_pipeline import pipeline_env
from tests.integration.monitoring.test_monitoring_dashboards_live import expand_sql
from tests.integration.stream_processor.sp_support import bundle_copy, review, send_reviews

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
N_EACH = 150


def served_version(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/model", timeout=5) as resp:
        return str(json.loads(resp.read())["version"])


def stored(pg: PostgresSettings) -> list[tuple[str, str]]:
    with psycopg.connect(pg.conninfo()) as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT review_id, model_version FROM predictions ORDER BY predicted_at, review_id")]


def test_promote_and_roll_back_mid_stream(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec], pg_settings: PostgresSettings,
    tiny_bundle: Path, unique_id: str, tmp_path: Path,
    service_factory: Callable[..., ServiceProcess], ports: Callable[[], int],
) -> None:
    models = tmp_path / "models"
    serving = models / "serving"
    bundle_copy(tiny_bundle, serving, "tiny-1")
    v2 = bundle_copy(tiny_bundle, tmp_path / "build" / "v2", "tiny-2")
    env = pipeline_env(kafka_settings, pg_settings, unique_id)
    pair = start_sink_and_worker(service_factory, ports, env, tmp_path / "faust", {
        "SPOILER_BUNDLE_PATH": str(serving), "SPOILER_WORKER_BATCH_SIZE": "4",
        "SPOILER_WORKER_RELOAD_POLL_S": "1"})
    services, worker_port = pair.services, pair.worker_port

    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_")}
    cli_env.update({k: v for k, v in env.items() if k.startswith("SPOILER_PG_")})
    cli_env.update({"PYTHONPATH": str(REPO_ROOT),
                    "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                    "SPOILER_BUNDLE_PATH": str(serving),
                    "SPOILER_TRAINING_CHALLENGER_PATH": str(models / "challenger"),
                    "SPOILER_TRAINING_VERSIONS_DIR": str(models / "versions")})

    def training(*args: str) -> dict[str, object]:
        result = subprocess.run([sys.executable, "-m", "training", *args], cwd=REPO_ROOT,
                                env=cli_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return dict(json.loads(result.stdout))

    def stream(prefix: str) -> threading.Thread:
        reviews = [review(i, f"review {i}: the twist at the end surprised everyone",
                          prefix=prefix) for i in range(N_EACH)]

        def trickle() -> None:
            for start in range(0, N_EACH, 5):
                send_reviews(kafka_settings, topics["reviews"].name, reviews[start:start + 5])
                time.sleep(0.1)

        thread = threading.Thread(target=trickle)
        thread.start()
        return thread

    def switch_mid_stream(prefix: str, done_before: int, command: list[str],
                          version: str) -> dict[str, object]:
        sender = stream(prefix)
        wait_for(lambda: len(stored(pg_settings)) >= done_before + 30, 120,
                 "predictions before the switch", services)
        event = training(*command)
        wait_for(lambda: served_version(worker_port) == version, 30, f"{version} served",
                 services)
        sender.join()
        wait_for(lambda: len(stored(pg_settings)) >= done_before + N_EACH, 180,
                 "every prediction", services)
        return event

    promoted = switch_mid_stream("a", 0, ["promote", str(v2)], "tiny-2")
    assert promoted["from_version"] == "tiny-1" and promoted["to_version"] == "tiny-2"
    assert serving.is_symlink()
    back = switch_mid_stream("b", N_EACH, ["rollback"], "tiny-1")
    assert back["action"] == "rollback" and back["to_version"] == "tiny-1"

    rows = stored(pg_settings)
    ids = [r[0] for r in rows]
    assert sorted(ids) == sorted([f"a{i}" for i in range(N_EACH)] +
                                 [f"b{i}" for i in range(N_EACH)]), "a review left unscored"
    versions = [v for _, v in rows]
    # One switch each way, in order: tiny-1 ... tiny-2 ... tiny-1.
    changes = [versions[i] for i in range(len(versions))
               if i == 0 or versions[i] != versions[i - 1]]
    assert changes == ["tiny-1", "tiny-2", "tiny-1"], changes
    with psycopg.connect(pg_settings.conninfo()) as conn:
        events = conn.execute("SELECT action, from_version, to_version FROM model_promotions "
                              "ORDER BY id").fetchall()
        # The dashboards' "Model promotions" annotation, as Grafana runs it.
        shown = conn.execute(expand_sql(PROMOTIONS_SQL)).fetchall()
    assert events == [("promote", "tiny-1", "tiny-2"), ("rollback", "tiny-2", "tiny-1")]
    assert [(row[1], row[2]) for row in shown] == [
        ("promote: tiny-1 -> tiny-2", "model-promote"),
        ("rollback: tiny-2 -> tiny-1", "model-rollback")]


def test_promotion_refuses_a_bundle_that_fails_parity_or_does_not_load(
    tiny_bundle: Path, tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    serving = models / "serving"
    bundle_copy(tiny_bundle, serving, "tiny-1")
    no_parity = bundle_copy(tiny_bundle, tmp_path / "no-parity", "tiny-no-parity")
    meta = json.loads((no_parity / "bundle.json").read_text())
    meta["parity"]["passed"] = False
    (no_parity / "bundle.json").write_text(json.dumps(meta))
    broken = bundle_copy(tiny_bundle, tmp_path / "broken", "tiny-broken")
    (broken / "model.onnx").write_bytes((broken / "model.onnx").read_bytes()[:1000])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_")}
    env.update({"PYTHONPATH": str(REPO_ROOT),
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "SPOILER_BUNDLE_PATH": str(serving),
                "SPOILER_TRAINING_VERSIONS_DIR": str(models / "versions")})
    for bundle, why in ((no_parity, "did not pass the parity gate"), (broken, "does not load")):
        result = subprocess.run([sys.executable, "-m", "training", "promote", str(bundle)],
                                cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and why in errors[0], result.stderr[-2000:]
        assert not serving.is_symlink()  # untouched: still the plain directory it was
        assert json.loads((serving / "bundle.json").read_text())["version"] == "tiny-1"
    assert not (models / "promotions.jsonl").exists()
