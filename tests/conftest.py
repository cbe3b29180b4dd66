"""Fixtures shared by every test tier.

Integration tests run against the native stack (`make stack-up`); each test gets
its own topic prefix and its own PostgreSQL database, so tests never collide
with each other, with a running pipeline, or with a previous run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.postgres import scratch_database
from devstack.procs import free_port as _free_port
from spoiler_common.kafka import admin_client
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec, ensure_topics, topic_specs

# A developer's .env may switch on what changes a test's services (the README's walk-through
# adds a shadow challenger); the environment wins over .env and every service a test starts
# inherits it, so the suite runs them with it off and a test that wants one sets it itself.
os.environ["SPOILER_WORKER_CHALLENGER_PATH"] = ""

SHARED = REPO_ROOT.parent / "shared"
REAL_SAMPLE = SHARED / "data" / "imdb-real-sample" / "reviews.jsonl"


@pytest.fixture
def real_sample() -> Path:
    """715 real labelled reviews (third-party text, read in place, never copied)."""
    if not REAL_SAMPLE.exists():
        pytest.skip(f"real sample not found at {REAL_SAMPLE}")
    return REAL_SAMPLE


@pytest.fixture(scope="session")
def tiny_bundle(pytestconfig: pytest.Config) -> Path:
    """A real bundle (tiny DistilBERT exported by the project's own pipeline), cached."""
    from training.tiny import cached_tiny_bundle

    return cached_tiny_bundle(Path(pytestconfig.cache.mkdir("tiny-bundle")), version="tiny-1",
                              seed=0)


@pytest.fixture(scope="session")
def tiny_challenger_bundle(pytestconfig: pytest.Config) -> Path:
    """A second tiny bundle (another seed and version): the challenger in shadow tests."""
    from training.tiny import cached_tiny_bundle

    return cached_tiny_bundle(Path(pytestconfig.cache.mkdir("tiny-bundle")), version="tiny-2",
                              seed=1)


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_prefix(unique_id: str) -> str:
    return f"t{unique_id}."


@pytest.fixture
def kafka_settings(topic_prefix: str) -> KafkaSettings:
    """Settings for the native broker with a prefix unique to this test."""
    return KafkaSettings(topic_prefix=topic_prefix)


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Iterator[dict[str, TopicSpec]]:
    """The declared topics, created under this test's prefix; deleted afterwards."""
    specs = topic_specs(kafka_settings.topic_prefix)
    admin = admin_client(kafka_settings)
    ensure_topics(admin, specs)
    yield {spec.role: spec for spec in specs}
    admin.delete_topics([spec.name for spec in specs], operation_timeout=30)


@pytest.fixture
def pg_settings(unique_id: str) -> Iterator[PostgresSettings]:
    """A fresh, empty database for this test on the native PostgreSQL; dropped afterwards."""
    with scratch_database(f"test_{unique_id}") as pg:
        yield pg
