"""Stream worker fixtures: a real tiny exported bundle, worker subprocesses, Kafka I/O helpers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.procs import free_port
from spoiler_common.settings import KafkaSettings
from tests.integration.stream_processor.sp_support import TopicReader, WorkerProc

TINY_VERSION = "tiny-1"


@pytest.fixture
def start_worker(
    kafka_settings: KafkaSettings, unique_id: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProc]]:
    """Factory: start a worker subprocess on this test's topics; all killed at teardown."""
    started: list[WorkerProc] = []

    def _start(bundle: Path, **overrides: Any) -> WorkerProc:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_WORKER_")}
        env.update({
            "SPOILER_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "SPOILER_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
            "SPOILER_BUNDLE_PATH": str(bundle),
            "SPOILER_WORKER_APP_ID": f"sp-test-{unique_id}",
            "SPOILER_WORKER_CHALLENGER_PATH": "",  # off whatever .env says (tests/conftest.py)
            "SPOILER_WORKER_WEB_PORT": str(port),
            "SPOILER_WORKER_DATADIR": str(tmp_path / f"datadir-{port}"),
            "SPOILER_WORKER_SESSION_TIMEOUT_S": "6",
            "SPOILER_WORKER_RELOAD_POLL_S": "1",
            "PYTHONUNBUFFERED": "1",
        })
        env.update({f"SPOILER_WORKER_{k.upper()}": str(v) for k, v in overrides.items()})
        worker = WorkerProc(env, port, tmp_path / f"worker-{port}.log").start()
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        worker.kill()


@pytest.fixture
def reader(kafka_settings: KafkaSettings, unique_id: str) -> Iterator[Callable[[str], TopicReader]]:
    readers: list[TopicReader] = []

    def _reader(topic: str) -> TopicReader:
        r = TopicReader(kafka_settings, topic, f"sp-test-reader-{unique_id}-{len(readers)}")
        readers.append(r)
        return r

    yield _reader
    for r in readers:
        r.close()
