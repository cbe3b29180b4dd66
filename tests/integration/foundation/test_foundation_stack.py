"""The native stack is real and usable: Kafka round trip, CLI tools, PostgreSQL, Prometheus."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import cast

import psycopg
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from devstack import prometheus as prom
from spoiler_common.contracts import ReviewPublished, decode, encode, headers_for, utc_now
from spoiler_common.kafka import admin_client, consumer, producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec

pytestmark = pytest.mark.integration
BIN = REPO_ROOT / "bin"


def make_review(i: int) -> ReviewPublished:
    return ReviewPublished(review_id=f"r{i}", produced_at=utc_now(), review_date="1 May 2020",
                           movie_id="tt0000001", user_id=f"ur{i}",
                           review_text=f"Review number {i}, caf\u00e9 \u2603.", rating=7)


def test_json_round_trip_through_the_broker(kafka_settings: KafkaSettings,
                                             topics: dict[str, TopicSpec]) -> None:
    topic = topics["reviews"].name
    sent = [make_review(i) for i in range(20)]
    prod = producer(kafka_settings, "test")
    for msg in sent:
        # confluent-kafka's stubs want this exact list type (lists are invariant).
        headers: list[tuple[str, str | bytes | None]] = list(headers_for(msg, "test"))
        prod.produce(topic, key=msg.review_id, value=encode(msg), headers=headers)
    assert prod.flush(30) == 0
    cons = consumer(kafka_settings, f"g-{topic}", "test")
    cons.subscribe([topic])
    got: list[ReviewPublished] = []
    deadline = time.monotonic() + 60
    while len(got) < len(sent) and time.monotonic() < deadline:
        record = cons.poll(1.0)
        if record is None or record.error():
            continue
        msg = decode(record.value(), ReviewPublished)
        assert record.key() == msg.review_id.encode()
        assert dict(cast(list[tuple[str, bytes]], record.headers()))["schema_version"] == b"1"
        got.append(msg)
    cons.close()
    assert sorted(got, key=lambda m: m.review_id) == sorted(sent, key=lambda m: m.review_id)


def test_topics_exist_with_declared_partitions(kafka_settings: KafkaSettings,
                                               topics: dict[str, TopicSpec]) -> None:
    metadata = admin_client(kafka_settings).list_topics(timeout=10).topics
    for spec in topics.values():
        assert len(metadata[spec.name].partitions) == spec.partitions


def test_cli_wrappers_describe_topics_and_print_a_message(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec]
) -> None:
    topic = topics["labels"].name
    described = subprocess.run(
        [BIN / "kafka-topics", "--bootstrap-server", kafka_settings.bootstrap_servers,
         "--describe", "--topic", topic],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert f"PartitionCount: {topics['labels'].partitions}" in described
    prod = producer(kafka_settings, "test")
    prod.produce(topic, key="k1", value=b'{"hello": "cli"}')
    prod.flush(30)
    printed = subprocess.run(
        [BIN / "kafka-console-consumer", "--bootstrap-server", kafka_settings.bootstrap_servers,
         "--topic", topic, "--from-beginning", "--max-messages", "1",
         "--timeout-ms", "60000", "--property", "print.key=true"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert printed.strip() == 'k1\t{"hello": "cli"}'
    groups = subprocess.run(
        [BIN / "kafka-consumer-groups", "--bootstrap-server", kafka_settings.bootstrap_servers,
         "--list"], capture_output=True, text=True, timeout=120, check=True)
    assert groups.returncode == 0


def test_postgres_accepts_the_project_settings() -> None:
    with psycopg.connect(PostgresSettings().conninfo()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (PostgresSettings().user,)


def test_promtool_accepts_config_and_rules() -> None:
    prom.check_config()
    rules = sorted((REPO_ROOT / "infra" / "prometheus" / "rules").glob("*.yml"))
    result = subprocess.run([prom.binary("promtool"), "check", "rules", *map(str, rules)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_a_test_exporter(tmp_path: Path, free_port: int) -> None:
    from devstack.procs import free_port as another_port
    from devstack.procs import stop_pid

    registry = CollectorRegistry()
    Counter("foundation_probe", "probe", registry=registry).inc(3)
    exporter_port = another_port()
    server, _thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: probe\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    pidfile = tmp_path / "prom.pid"
    prom.start(config, tmp_path / "data", free_port, tmp_path / "prom.log", pidfile, 60)
    try:
        value = None
        deadline = time.monotonic() + 30
        while value is None and time.monotonic() < deadline:
            url = f"http://127.0.0.1:{free_port}/api/v1/query?query=foundation_probe_total"
            with urllib.request.urlopen(url, timeout=5) as resp:
                result = json.load(resp)["data"]["result"]
            value = float(result[0]["value"][1]) if result else None
            time.sleep(0.5)
        assert value == 3.0
    finally:
        stop_pid(pidfile, "Prometheus")
        server.shutdown()


def test_compose_file_validates() -> None:
    result = subprocess.run(
        ["docker-compose", "--env-file", ".env.example", "-f", "compose.yaml", "config", "-q"],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def test_topics_cli_reports_ok_for_declared_topics(kafka_settings: KafkaSettings,
                                                  topics: dict[str, TopicSpec]) -> None:
    result = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/python"), "-m", "spoiler_tools.topics_cli", "ensure"],
        env={"SPOILER_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(line.split()[0] for line in result.stdout.splitlines()) == ["ok"] * len(topics)


def test_topics_cli_fails_clearly_without_a_broker() -> None:
    result = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/python"), "-m", "spoiler_tools.topics_cli", "ensure",
         "--timeout", "3"],
        env={"SPOILER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )
    assert result.returncode == 2
    assert "did not answer" in result.stderr and "Traceback" not in result.stderr
