"""Full-pipeline benchmark: reviews/s from the first produce to the last stored row,
and end-to-end latency, with the raw model loop on the same texts as the ceiling.

Runs the real producer, broker (the native stack's, under a unique topic
prefix), stream worker and sink as subprocesses, against a fresh database.
The bundle is `models/serving` when it exists (the realistic model), else a
tiny bundle built by the project's own export code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from devstack.postgres import create_database, drop_database
from devstack.procs import free_port
from spoiler_common.kafka import admin_client
from spoiler_common.model_runtime import load_bundle, model_text
from spoiler_common.settings import (
    DEFAULT_BUNDLE_PATH,
    REPO_ROOT,
    KafkaSettings,
    PostgresSettings,
)
from spoiler_common.topics import ensure_topics, topic_specs

PY = sys.executable
SERVING = DEFAULT_BUNDLE_PATH


def _bundle(work: Path) -> Path:
    """The served bundle (SPOILER_BUNDLE_PATH / SPOILER_BENCH_BUNDLE); tiny only if none."""
    from benchmarks.common import served_bundle

    return served_bundle().path


def _wait(check: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except Exception:  # still starting
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def _http_ok(port: int, path: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
        return bool(resp.status == 200)


def raw_loop(bundle_path: Path, texts: list[str], batch: int = 16) -> float:
    """The ceiling: the runtime loader over the same texts, batch by batch."""
    bundle = load_bundle(bundle_path, threads=1)
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        bundle.predict(texts[i:i + batch])
    return len(texts) / (time.perf_counter() - started)


def run(quick: bool = False) -> dict[str, Any]:
    n = 300 if quick else int(os.environ.get("SPOILER_BENCH_N", "2000"))
    uid = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(topic_prefix=f"benchpipe{uid}.")
    base_pg = PostgresSettings()
    database = f"bench_pipeline_{uid}"
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    admin = admin_client(kafka)
    specs = topic_specs(kafka.topic_prefix)
    ensure_topics(admin, specs)
    pg = create_database(base_pg, database)
    assert pg.password is not None
    bundle_path = _bundle(work)
    reviews = work / "reviews.jsonl"
    subprocess.run([PY, "-m", "producer", "synth", "--n", str(n), "--seed", "21",
                    "--out", str(reviews)], check=True, cwd=REPO_ROOT, capture_output=True)
    records = [json.loads(line) for line in reviews.read_text().splitlines()]
    texts = [model_text(r["review_summary"], r["review_text"]) for r in records]

    env = {**os.environ, "SPOILER_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
           "SPOILER_PG_DATABASE": database, "SPOILER_SINK_GROUP_ID": f"benchpipe-sink-{uid}",
           "SPOILER_WORKER_APP_ID": f"benchpipe-worker-{uid}",
           "SPOILER_BUNDLE_PATH": str(bundle_path),
           "SPOILER_WORKER_DATADIR": str(work / "faust")}
    sink_port, worker_port = free_port(), free_port()
    env["SPOILER_SINK_METRICS_PORT"], env["SPOILER_WORKER_WEB_PORT"] = (
        str(sink_port), str(worker_port))
    procs = [
        subprocess.Popen([PY, "-m", "sink", "run"], env=env, cwd=REPO_ROOT,
                         stdout=(work / "sink.log").open("wb"), stderr=subprocess.STDOUT,
                         start_new_session=True),
        subprocess.Popen([PY, "-m", "stream_processor", "worker"], env=env, cwd=REPO_ROOT,
                         stdout=(work / "worker.log").open("wb"), stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]
    try:
        _wait(lambda: _http_ok(sink_port, "/healthz"), 120, "sink")
        _wait(lambda: _http_ok(worker_port, "/readyz"), 180, "worker")
        started = time.monotonic()
        subprocess.run([PY, "-m", "producer", "replay", str(reviews), "--label-delay", "0",
                        "--metrics-port", "0"], env=env, cwd=REPO_ROOT, check=True,
                       capture_output=True)

        def stored() -> bool:
            with psycopg.connect(pg.conninfo()) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM reviews), (SELECT count(*) FROM predictions),"
                    " (SELECT count(*) FROM labels)").fetchone()
            return row is not None and min(row) >= n
        _wait(stored, 1800, f"{n} reviews stored")
        elapsed = time.monotonic() - started
        with psycopg.connect(pg.conninfo()) as conn:
            e2e = np.array([r[0] for r in conn.execute(
                "SELECT end_to_end_ms FROM predictions").fetchall()])
            stored_lat = np.array([float(r[0]) for r in conn.execute(
                "SELECT extract(epoch FROM p.stored_at - r.produced_at) * 1000 "
                "FROM predictions p JOIN reviews r USING (review_id)").fetchall()])
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        admin.delete_topics([s.name for s in specs], operation_timeout=30)
        drop_database(base_pg, database)
    ceiling = raw_loop(bundle_path, texts)
    result = {
        "reviews": n,
        "bundle": json.loads((bundle_path / "bundle.json").read_text())["version"],
        "pipeline_reviews_per_s": n / elapsed,
        "raw_loader_reviews_per_s": ceiling,
        "ratio_to_raw": n / elapsed / ceiling,
        "worker_end_to_end_ms_p50": float(np.percentile(e2e, 50)),
        "worker_end_to_end_ms_p99": float(np.percentile(e2e, 99)),
        "produce_to_stored_ms_p50": float(np.percentile(stored_lat, 50)),
        "produce_to_stored_ms_p99": float(np.percentile(stored_lat, 99)),
    }
    print(f"  full pipeline   {result['pipeline_reviews_per_s']:8.1f} reviews/s "
          f"(first produce -> last stored row, {n} reviews, bundle {result['bundle']})")
    print(f"  raw loader loop {ceiling:8.1f} reviews/s (ceiling, same texts and bundle)")
    print(f"  ratio           {result['ratio_to_raw']:8.2f}")
    print(f"  latency         worker end-to-end p50 {result['worker_end_to_end_ms_p50']:.0f} ms, "
          f"p99 {result['worker_end_to_end_ms_p99']:.0f} ms; produce->stored p50 "
          f"{result['produce_to_stored_ms_p50']:.0f} ms, "
          f"p99 {result['produce_to_stored_ms_p99']:.0f} ms (a burst: queueing included)")
    return result


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
