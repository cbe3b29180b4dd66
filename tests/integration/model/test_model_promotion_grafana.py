"""Promotion annotations through grafana-client, against the stub Grafana HTTP API."""

from __future__ import annotations

import logging

import pytest

from devstack.procs import free_port
from tests.integration.monitoring.test_monitoring_grafana_client import (  # noqa: F401
    TOKEN,
    StubGrafana,
    stub,
)
from training.promotion import annotate_grafana
from training.settings import TrainingSettings

pytestmark = pytest.mark.integration
EVENT = {"action": "promote", "from_version": "v1", "to_version": "v2",
         "reason": "autopilot: better over 600 labels"}


def test_promotion_writes_a_grafana_annotation(stub: StubGrafana) -> None:  # noqa: F811
    settings = TrainingSettings(grafana_url=stub.url, grafana_token=TOKEN)  # type: ignore[arg-type]
    assert annotate_grafana(dict(EVENT), settings) is True
    assert not stub.errors
    (note,) = stub.annotations
    assert note["tags"] == ["spoiler-stream", "model-promotion", "promote"]
    assert note["text"] == "Model promote: v1 → v2 (autopilot: better over 600 labels)"


def test_unreachable_grafana_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING):
        assert annotate_grafana(dict(EVENT), TrainingSettings(grafana_url=url)) is False
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert url in warning.getMessage() and "recorded in PostgreSQL" in warning.getMessage()


def test_no_grafana_url_says_where_the_event_is(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert annotate_grafana(dict(EVENT), TrainingSettings(grafana_url=None)) is False
    assert "model_promotions" in caplog.text
