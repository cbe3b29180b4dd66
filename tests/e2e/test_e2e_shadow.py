"""Shadow scoring on real services: worker (two real exported bundles), Kafka, sink, PostgreSQL.

- every review gets the champion's prediction (the product) and the challenger's,
  both stored; `review_outcomes` shows the champion's only; the stored challenger
  scores are the challenger bundle's own;
- a challenger that fails to load, or fails on every call, leaves the champion's
  stream exactly as it is (every review predicted, no dead letter), and one that
  appears on disk later is hot-loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from spoiler_common.settings import KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec
from tests.e2e.conftest import ServiceProcess, start_sink_and_worker, wait_for
from tests.e2e.test_e2e_pipeline import pipeline_env
from tests.integration.stream_processor.sp_support import review, send_reviews

pytestmark = pytest.mark.e2e
TEXTS = [
    "A slow start, but the last act is worth it.",
    "The twist at the end: the detective was the killer all along.",
    "Great cast, weak script, and far too long.",
    "I cried when the father dies in the final scene.",
    "Beautiful photography. The music is forgettable.",
]


def rows(pg: PostgresSettings, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.conninfo()) as conn:
        return conn.execute(sql).fetchall()


def role_counts(pg: PostgresSettings) -> dict[str, int]:
    return dict(rows(pg, "SELECT role, count(*) FROM predictions GROUP BY role"))  # type: ignore[arg-type]


def worker_json(port: int, path: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def start(
    service_factory: Callable[..., ServiceProcess], ports: Callable[[], int], env: dict[str, str],
    tmp_path: Path, worker_env: dict[str, str],
) -> tuple[list[ServiceProcess], int]:
    pair = start_sink_and_worker(service_factory, ports, env, tmp_path / "faust",
                                 {"SPOILER_WORKER_RELOAD_POLL_S": "1", **worker_env})
    return pair.services, pair.worker_port


def test_every_review_is_scored_by_both_and_the_champion_stays_the_product(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec], pg_settings: PostgresSettings,
    tiny_bundle: Path, tiny_challenger_bundle: Path, unique_id: str, tmp_path: Path,
    service_factory: Callable[..., ServiceProcess], ports: Callable[[], int],
) -> None:
    from spoiler_common.model_runtime import load_bundle

    n = 120
    env = pipeline_env(kafka_settings, pg_settings, unique_id)
    services, _ = start(service_factory, ports, env, tmp_path, {
        "SPOILER_BUNDLE_PATH": str(tiny_bundle),
        "SPOILER_WORKER_CHALLENGER_PATH": str(tiny_challenger_bundle)})
    reviews = [review(i, f"{TEXTS[i % len(TEXTS)]} ({i})") for i in range(n)]
    send_reviews(kafka_settings, topics["reviews"].name, reviews)
    wait_for(lambda: role_counts(pg_settings) == {"champion": n, "challenger": n}, 300,
             f"{n} champion and {n} challenger predictions", services, interval=2)

    stored = rows(pg_settings, "SELECT review_id, role, model_version, spoiler_probability "
                               "FROM predictions")
    versions = {(role, version) for _, role, version, _ in stored}
    assert versions == {("champion", "tiny-1"), ("challenger", "tiny-2")}
    by_role = {role: {rid: p for rid, r, _, p in stored if r == role}
               for role in ("champion", "challenger")}
    assert set(by_role["champion"]) == set(by_role["challenger"]) == {r.review_id for r in reviews}
    # The challenger's stored scores are its own bundle's (served variant, same texts).
    offline = load_bundle(tiny_challenger_bundle).predict([r.review_text for r in reviews])
    for r, p in zip(reviews, offline.probabilities, strict=True):
        assert by_role["challenger"][r.review_id] == pytest.approx(float(p), abs=1e-4)
    assert by_role["champion"] != by_role["challenger"]

    outcomes = rows(pg_settings, "SELECT review_id, model_version, spoiler_probability "
                                 "FROM review_outcomes")
    assert len(outcomes) == n
    assert {v for _, v, _ in outcomes} == {"tiny-1"}
    assert {rid: p for rid, _, p in outcomes} == by_role["champion"]
    assert rows(pg_settings, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert all(s.alive for s in services)


def test_a_broken_challenger_leaves_the_champion_stream_intact(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec], pg_settings: PostgresSettings,
    tiny_bundle: Path, tiny_challenger_bundle: Path, unique_id: str, tmp_path: Path,
    service_factory: Callable[..., ServiceProcess], ports: Callable[[], int],
) -> None:
    n = 40
    broken = tmp_path / "broken-bundle"
    broken.mkdir()
    (broken / "bundle.json").write_text("{not json")
    (broken / "model.onnx").write_bytes(b"\x00garbage")
    link = tmp_path / "challenger"
    link.symlink_to(broken)
    failing = tmp_path / "challenger-fails"
    env = pipeline_env(kafka_settings, pg_settings, unique_id)
    services, port = start(service_factory, ports, env, tmp_path, {
        "SPOILER_BUNDLE_PATH": str(tiny_bundle),
        "SPOILER_WORKER_CHALLENGER_PATH": str(link),
        "SPOILER_WORKER_FAULT_HOOK": "tests.integration.stream_processor.fault_hooks:hook",
        "SP_TEST_CHALLENGER_BROKEN": str(failing)})
    assert worker_json(port, "/model")["challenger"]["loaded"] is False

    def batch(prefix: str) -> None:
        send_reviews(kafka_settings, topics["reviews"].name,
                     [review(i, TEXTS[i % len(TEXTS)], prefix=prefix) for i in range(n)])

    def champion_rows(prefix: str) -> int:
        return int(rows(pg_settings, f"SELECT count(*) FROM predictions WHERE role = 'champion' "
                                     f"AND review_id LIKE '{prefix}%'")[0][0])

    # 1. The challenger does not load: the champion serves alone.
    batch("a")
    wait_for(lambda: champion_rows("a") == n, 240, "champion predictions (no challenger)",
             services, interval=1)
    # 2. A good bundle appears at the challenger's path: hot-loaded, scored in shadow.
    tmp = tmp_path / "challenger.new"
    tmp.symlink_to(tiny_challenger_bundle)
    os.replace(tmp, link)
    wait_for(lambda: worker_json(port, "/model")["challenger"].get("version") == "tiny-2", 60,
             "the challenger hot-loaded", services)
    batch("b")
    wait_for(lambda: champion_rows("b") == n and role_counts(pg_settings).get("challenger") == n,
             240, "champion and challenger predictions", services, interval=1)
    # 3. The challenger fails on every call: the champion goes on, nothing is dead-lettered.
    failing.touch()
    batch("c")
    wait_for(lambda: champion_rows("c") == n, 240, "champion predictions (challenger failing)",
             services, interval=1)

    assert role_counts(pg_settings) == {"champion": 3 * n, "challenger": n}
    challenger_ids = rows(pg_settings, "SELECT review_id FROM predictions "
                                       "WHERE role = 'challenger'")
    assert {rid[0] for rid in challenger_ids} == {f"b{i}" for i in range(n)}
    outcomes = rows(pg_settings, "SELECT model_version, count(*) FROM review_outcomes "
                                 "GROUP BY model_version")
    assert outcomes == [("tiny-1", 3 * n)]
    assert rows(pg_settings, "SELECT count(*) FROM dead_letters") == [(0,)]
    metrics = urllib_text(port, "/metrics")
    assert 'spoiler_worker_challenger_failures_total{stage="inference"} 40.0' in metrics
    assert "spoiler_worker_model_failing 0.0" in metrics
    assert all(s.alive for s in services)


def urllib_text(port: int, path: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.read().decode()
