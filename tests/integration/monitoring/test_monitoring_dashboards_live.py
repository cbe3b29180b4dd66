"""Every panel query of every committed dashboard returns data after a short end-to-end run.

Real pipeline: producer (`python -m producer stream`) -> Kafka -> stream worker (tiny
ONNX bundle) -> Kafka -> sink -> PostgreSQL; the monitor in-process; an own
Prometheus scraping all four with the real rule files. Then each PromQL target runs
against that Prometheus and each SQL target against PostgreSQL (Grafana's macros
and variables expanded the way Grafana would).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import start_http_server

from devstack.procs import free_port
from monitoring.service import Monitor
from monitoring.settings import MonitorSettings
from spoiler_common.kafka import admin_client, producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec
from tests.integration.monitoring.dashboard_lint import committed, targets_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WINDOW = "5m"


class Procs:
    """Service subprocesses of this test, each in its own session; killed by PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.root / f"{name}.log").open("wb")
        full = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_")}
        full.update(env, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO_ROOT, env=full,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))

    def check_alive(self, *names: str) -> None:
        for name, proc in self.procs:
            if name in names and proc.poll() is not None:
                tail = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def expand_promql(expr: str) -> str:
    return (expr.replace("$model_version", ".*").replace("$window", WINDOW)
            .replace("$__rate_interval", "1m"))


def expand_sql(query: str) -> str:
    """Grafana's PostgreSQL macros and variables, as Grafana expands them (last hour)."""
    query = re.sub(r"\$__timeGroupAlias\((\w+),\s*'1m'\)",
                   r'to_timestamp(floor(extract(epoch FROM \1) / 60) * 60) AS "time"', query)
    query = re.sub(r"\$__timeFilter\((\w+)\)",
                   r"\1 BETWEEN now() - interval '1 hour' AND now()", query)
    return query.replace("${model_version:regex}", ".*")


def wait_for(check: Any, timeout_s: float, what: str, procs: Procs) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs.check_alive("stream_processor", "sink", "producer")
        if check():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def test_every_panel_query_returns_data(
        tiny_bundle: Path, tiny_challenger_bundle: Path,
        topics: dict[str, TopicSpec], kafka_settings: KafkaSettings,
        monitor_pg: PostgresSettings, own_prometheus: Any, procs: Procs, unique_id: str,
        tmp_path: Path) -> None:
    ports = {job: free_port() for job in ("producer", "stream_processor", "sink", "monitoring")}
    common = {
        "SPOILER_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "SPOILER_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SPOILER_PG_DATABASE": monitor_pg.database,
    }
    own_prometheus.start({job: [f"127.0.0.1:{port}"] for job, port in ports.items()},
                         REPO_ROOT / "infra" / "prometheus" / "rules")
    procs.start("sink", ["sink", "run"], {
        **common, "SPOILER_SINK_METRICS_PORT": str(ports["sink"]),
        "SPOILER_SINK_METRICS_HOST": "127.0.0.1",
        "SPOILER_SINK_GROUP_ID": f"mon-sink-{unique_id}"})
    procs.start("stream_processor", ["stream_processor", "worker"], {
        **common, "SPOILER_BUNDLE_PATH": str(tiny_bundle),
        # A challenger in shadow: the champion/challenger panels need one.
        "SPOILER_WORKER_CHALLENGER_PATH": str(tiny_challenger_bundle),
        "SPOILER_WORKER_APP_ID": f"mon-worker-{unique_id}",
        "SPOILER_WORKER_WEB_PORT": str(ports["stream_processor"]),
        "SPOILER_WORKER_DATADIR": str(tmp_path / "worker-data"),
        "SPOILER_WORKER_SESSION_TIMEOUT_S": "6"})
    procs.start("producer", ["producer", "stream", "--n", "100000", "--rate", "25",
                             "--seed", "3", "--label-delay", "2"], {
        **common, "SPOILER_PRODUCER_METRICS_PORT": str(ports["producer"]),
        "SPOILER_PRODUCER_METRICS_HOST": "127.0.0.1"})
    # One message no contract accepts: the dead-letter panels need a dead letter.
    bad = producer(kafka_settings, "monitor-e2e")
    bad.produce(topics["reviews"].name, key=b"bad", value=b"{not json")
    assert bad.flush(10) == 0

    settings = MonitorSettings(windows=[WINDOW], alert_window=WINDOW, interval_s=2.0,
                               bundle_path=tiny_bundle, metrics_host="127.0.0.1",
                               min_comparison_labels=30, comparison_interval_s=2.0)
    monitor = Monitor(settings=settings, pg=monitor_pg, kafka=kafka_settings,
                      admin=admin_client(kafka_settings))
    server, _ = start_http_server(ports["monitoring"], addr="127.0.0.1",
                                  registry=monitor.metrics.registry)
    stop = threading.Event()
    loop = threading.Thread(target=monitor.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        def ready() -> bool:
            with psycopg.connect(monitor_pg.conninfo()) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM predictions), (SELECT count(*) FROM labels), "
                    "(SELECT count(*) FROM dead_letters)").fetchone()
            assert row is not None
            return (row[0] >= 150 and row[1] >= 100 and row[2] >= 1
                    and bool(own_prometheus.query("spoiler_model_roc_auc"))
                    and bool(own_prometheus.query("spoiler_comparison_roc_auc"))
                    and bool(own_prometheus.query("spoiler:worker_end_to_end_seconds:p99_5m")))

        wait_for(ready, 240, "predictions, labels, a dead letter and model metrics", procs)

        def queries_without_data() -> tuple[int, list[str]]:
            empty: list[str] = []
            checked = 0
            with psycopg.connect(monitor_pg.conninfo()) as conn:
                for board in committed().values():
                    for var in board["templating"]["list"]:
                        expr = var["query"]["query"].replace("label_values(", "").split(",")[0]
                        if not own_prometheus.query(expr):
                            empty.append(f"{board['uid']}/variable {var['name']}")
                    for title, _, target in targets_of(board):
                        checked += 1
                        where = f"{board['uid']}/{title}/{target['refId']}"
                        if "expr" in target:
                            if not own_prometheus.query(expand_promql(target["expr"])):
                                empty.append(f"{where}: {target['expr']}")
                        elif not conn.execute(expand_sql(target["rawSql"])).fetchall():
                            empty.append(f"{where}: {target['rawSql']}")
            return checked, empty

        # A loaded machine can miss a 1 s scrape (rates then need the next two): give
        # every query a few passes before calling it empty.
        deadline = time.monotonic() + 30
        checked, empty = queries_without_data()
        while empty and time.monotonic() < deadline:
            time.sleep(2.0)
            checked, empty = queries_without_data()
        assert checked > 40
        assert not empty, "queries without data:\n" + "\n".join(empty)
    finally:
        stop.set()
        loop.join(timeout=15)
        server.shutdown()
        server.server_close()
