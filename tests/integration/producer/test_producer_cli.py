"""The CLI as an operator runs it: a subprocess, exit codes, one clear line, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spoiler_common.settings import REPO_ROOT, KafkaSettings
from spoiler_common.topics import TopicSpec

from .conftest import topic_count

pytestmark = pytest.mark.integration


def _env(kafka: KafkaSettings, **extra: str) -> dict[str, str]:
    return {**os.environ, "SPOILER_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SPOILER_PRODUCER_METRICS_PORT": "0", **extra}


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "producer", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_synth_then_replay_via_the_cli(
    tmp_path: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
) -> None:
    out = tmp_path / "r.jsonl.gz"
    made = _cli("synth", "--n", "300", "--seed", "4", "--out", str(out), "--json",
                env=_env(kafka_settings))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["n"] == 300
    sent = _cli("replay", str(out), "--label-delay", "0", "--json", env=_env(kafka_settings))
    assert sent.returncode == 0, sent.stderr
    summary = json.loads(sent.stdout)
    assert (summary["sent"], summary["labels_sent"], summary["skipped"]) == (300, 300, {})
    assert topic_count(kafka_settings, topics["reviews"].name) == 300


def test_missing_file_is_one_clear_line(kafka_settings: KafkaSettings) -> None:
    result = _cli("replay", "/no/such/file.jsonl", env=_env(kafka_settings))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: input file not found: /no/such/file.jsonl"


def test_unreachable_broker_is_one_clear_line(
    tmp_path: Path, kafka_settings: KafkaSettings, free_port: int,
) -> None:
    env = _env(kafka_settings, SPOILER_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port}",
               SPOILER_PRODUCER_CONNECT_TIMEOUT_S="2")
    result = _cli("stream", "--n", "10", env=env)
    assert result.returncode == 2
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Kafka"), result.stderr


def test_sigterm_flushes_and_summarises(
    kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "stream", "--n", "100000", "--rate", "200",
         "--label-delay", "30", "--json"],
        cwd=REPO_ROOT, env=_env(kafka_settings), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while topic_count(kafka_settings, topics["reviews"].name) < 100:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped_by"] == "signal"
    assert summary["sent"] == topic_count(kafka_settings, topics["reviews"].name)
    # Labels were 30 s away: dropped, and said so, rather than sent early.
    assert summary["labels_dropped"] == summary["sent"]
    assert topic_count(kafka_settings, topics["labels"].name) == 0
