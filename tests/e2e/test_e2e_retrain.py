"""Retrain from a PostgreSQL filled by a real replay; promote the challenger; roll back.

The real producer replays generated reviews (labels at once) through the real
broker, the stream worker (tiny exported bundle, the champion) and the sink
into this test's database; `python -m training retrain` then runs
retrain/dvc.yaml in a temporary copy of the pipeline with tiny parameters and the
finetune recipe (tests/integration/model/test_model_recalibrate.py runs recalibrate).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import yaml

from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec
from tests.e2e.conftest import PY, ServiceProcess, start_sink_and_worker, wait_for
from tests.e2e.test_e2e_pipeline import counts, pipeline_env
from tests.retrain_support import workspace

# Eight DVC stages, each its own Python process importing torch, on 2 busy cores.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]
N_REVIEWS = 360
# collect and compare always run (the database and the champion are not files DVC
# hashes); their outputs are byte-identical when nothing changed, so these do not run.
STAGES = ("prepare", "baseline", "train", "export", "evaluate", "package", "register")


def training_env(work: Path, pg: PostgresSettings) -> dict[str, str]:
    assert pg.password is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(REPO_ROOT),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "SPOILER_PG_HOST": pg.host, "SPOILER_PG_PORT": str(pg.port),
        "SPOILER_PG_DATABASE": pg.database, "SPOILER_PG_USER": pg.user,
        "SPOILER_PG_PASSWORD": pg.password.get_secret_value(),
        "SPOILER_BUNDLE_PATH": str(work / "models" / "serving"),
        "SPOILER_TRAINING_CHALLENGER_PATH": str(work / "models" / "challenger"),
        "SPOILER_TRAINING_VERSIONS_DIR": str(work / "models" / "versions"),
    })
    return env


def training(work: Path, env: dict[str, str], *args: str,
             ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "training", *args], cwd=work, env=env,
                            capture_output=True, text=True, timeout=1500)
    if ok:
        assert result.returncode == 0, (
            f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-4000:]}")
    return result


def fill_from_replay(kafka: KafkaSettings, pg: PostgresSettings, unique_id: str,
                     tmp_path: Path, champion: Path,
                     service_factory: Callable[..., ServiceProcess],
                     ports: Callable[[], int]) -> None:
    env = pipeline_env(kafka, pg, unique_id)
    services = start_sink_and_worker(service_factory, ports, env, tmp_path / "faust",
                                     {"SPOILER_BUNDLE_PATH": str(champion)}).services
    reviews = tmp_path / "reviews.jsonl"
    subprocess.run([PY, "-m", "producer", "synth", "--n", str(N_REVIEWS), "--seed", "5",
                    "--scenario", "vocabulary", "--drift-at", "0", "--out", str(reviews)],
                   check=True, cwd=REPO_ROOT, capture_output=True)
    replay = subprocess.run(
        [PY, "-m", "producer", "replay", str(reviews), "--label-delay", "0",
         "--metrics-port", "0"], env={**env, "PATH": "/usr/bin:/bin"}, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr[-2000:]
    expected = {"reviews": N_REVIEWS, "predictions": N_REVIEWS, "labels": N_REVIEWS}
    wait_for(lambda: counts(pg) == expected, 600, f"{expected} stored rows", services,
             interval=2)
    for service in services:
        service.stop()


def test_retrain_from_stored_labels_then_promote_and_roll_back(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec], pg_settings: PostgresSettings,
    tiny_bundle: Path, unique_id: str, tmp_path: Path,
    service_factory: Callable[..., ServiceProcess], ports: Callable[[], int],
) -> None:
    fill_from_replay(kafka_settings, pg_settings, unique_id, tmp_path, tiny_bundle,
                     service_factory, ports)
    work = workspace(tmp_path, tiny_bundle)
    env = training_env(work, pg_settings)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "--no-scm", "-q"],
                   cwd=work, check=True)

    # A window with no labels stops before any stage, with one line and exit code 2.
    params_file = work / "retrain" / "params.yaml"
    good = params_file.read_text()
    params = yaml.safe_load(good)
    params["collect"]["since"] = "2999-01-01T00:00:00+00:00"
    params_file.write_text(yaml.safe_dump(params))
    empty = training(work, env, "retrain", ok=False)
    assert empty.returncode == 2, empty.stderr[-2000:]
    errors = [line for line in empty.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no labelled reviews in the window" in errors[0]
    assert f"holds {N_REVIEWS} labelled reviews" in errors[0]
    assert not (work / "data" / "collected").exists()
    params_file.write_text(good)

    first = training(work, env, "retrain")
    snapshot = work / "data" / "collected" / "reviews.jsonl"
    manifest = json.loads((work / "data" / "collected" / "manifest.json").read_text())
    rows = [json.loads(line) for line in snapshot.read_text().splitlines()]
    assert len(rows) == manifest["rows"] == N_REVIEWS
    assert manifest["data_hash"] == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert sum(manifest["class_counts"].values()) == N_REVIEWS
    assert "review_outcomes" in manifest["query"]
    with psycopg.connect(pg_settings.conninfo()) as conn:
        stored: dict[str, str] = dict(conn.execute(
            "SELECT o.review_id, r.review_text FROM review_outcomes o "
            "JOIN reviews r USING (review_id)").fetchall())
    assert {r["review_id"]: r["review_text"] for r in rows} == stored

    comparison = json.loads((work / "reports" / "retrain" / "comparison.json").read_text())
    champion_version = json.loads((tiny_bundle / "bundle.json").read_text())["version"]
    assert comparison["champion"]["version"] == champion_version
    prepared = json.loads((work / "data" / "retrain" / "prepared" / "prepare.json").read_text())
    assert comparison["n"] == prepared["sizes"]["test"]
    cmp = comparison["comparison"]
    assert cmp["n"] == comparison["n"] and cmp["verdict"] in ("better", "worse", "none")
    assert "verdict" in first.stdout and champion_version in first.stdout

    challenger = work / "models" / "challenger"
    assert challenger.is_symlink()
    challenger_version = json.loads((challenger / "bundle.json").read_text())["version"]
    assert comparison["challenger"]["version"] == challenger_version
    code = ("import json, mlflow; c = mlflow.MlflowClient(); "
            "v = c.get_model_version_by_alias('spoiler-detector-retrain-test', 'challenger'); "
            "r = c.get_run(v.run_id); "
            "print(json.dumps({'version': v.version, 'tags': v.tags, "
            "'metrics': r.data.metrics}))")
    registered = json.loads(subprocess.run([sys.executable, "-c", code], cwd=work, env=env,
                                           capture_output=True, text=True, check=True).stdout)
    assert str(registered["version"]) == "1"
    tags = registered["tags"]
    assert tags["bundle_version"] == challenger_version
    assert tags["snapshot_hash"] == manifest["data_hash"]
    assert tags["parent_bundle_version"] == champion_version
    assert tags["data_window_first"] == manifest["window"]["first_produced_at"]
    assert registered["metrics"]["compare_challenger_accuracy"] == pytest.approx(
        cmp["challenger"]["accuracy"])

    # Same database content: collect writes the same bytes and no later stage runs.
    before = snapshot.read_bytes()
    report_before = (work / "reports" / "retrain" / "comparison.json").read_bytes()
    again = training(work, env, "retrain")
    ran = [s for s in STAGES if f"Running stage 'retrain/dvc.yaml:{s}'" in again.stdout]
    assert ran == [], f"stages re-ran on unchanged data: {ran}\n{again.stdout[-2000:]}"
    assert snapshot.read_bytes() == before
    assert (work / "reports" / "retrain" / "comparison.json").read_bytes() == report_before

    # Promote the challenger (MLflow alias -> served link), then roll back.
    promoted = json.loads(training(work, env, "promote", "challenger", "--params",
                                   "retrain/params.yaml").stdout)
    serving = work / "models" / "serving"
    assert serving.is_symlink()
    assert json.loads((serving / "bundle.json").read_text())["version"] == challenger_version
    assert promoted["from_version"] == champion_version
    assert promoted["to_registry_version"] == "1"
    assert promoted["recorded_in_postgres"] is True  # the sink migrated this database
    code = ("import mlflow; c = mlflow.MlflowClient(); "
            "print(c.get_model_version_by_alias('spoiler-detector-retrain-test', "
            "'champion').version)")
    assert subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True,
                          text=True, check=True).stdout.strip() == "1"
    back = json.loads(training(work, env, "rollback", "--params",
                               "retrain/params.yaml").stdout)
    assert back["action"] == "rollback" and back["to_version"] == champion_version
    assert json.loads((serving / "bundle.json").read_text())["version"] == champion_version
    history = (work / "models" / "promotions.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in history] == ["promote", "rollback"]
    with psycopg.connect(pg_settings.conninfo()) as conn:
        recorded = conn.execute("SELECT action, from_version, to_version FROM model_promotions "
                                "ORDER BY id").fetchall()
    assert recorded == [("promote", champion_version, challenger_version),
                        ("rollback", challenger_version, champion_version)]
