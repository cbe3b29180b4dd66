"""Dashboards and provisioning: generated files are current, uids and metrics are known."""

from __future__ import annotations

import json

import pytest
import yaml

from monitoring import dashboards
from monitoring.exporter import METRICS
from spoiler_common.settings import REPO_ROOT

pytestmark = pytest.mark.integration

GRAFANA = REPO_ROOT / "grafana"
# Metrics the other services export (docs/architecture.md) and Prometheus' own.
SERVICE_METRICS = {
    "up",
    "spoiler_worker_messages_in_total", "spoiler_worker_predictions_total",
    "spoiler_worker_dead_letters_total", "spoiler_worker_batch_size_sum",
    "spoiler_worker_batch_size_count", "spoiler_worker_score_bucket",
    "spoiler_worker_score_count", "spoiler_sink_write_seconds_bucket",
}


def provisioned_uids() -> set[str]:
    uids = set()
    for file in (GRAFANA / "provisioning" / "datasources").glob("*.yml"):
        uids |= {d["uid"] for d in yaml.safe_load(file.read_text())["datasources"]}
    return uids


def known_metrics() -> set[str]:
    recorded = set()
    for file in (REPO_ROOT / "infra" / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(file.read_text())["groups"]:
            recorded |= {r["record"] for r in group["rules"] if "record" in r}
    return set(METRICS) | SERVICE_METRICS | recorded


def test_committed_dashboards_match_the_generator() -> None:
    for name, board in dashboards.build().items():
        path = GRAFANA / "dashboards" / f"{name}.json"
        assert path.read_text("utf-8") == dashboards.render(board), (
            f"{path} is stale: run `python -m monitoring build-dashboards`")


def test_datasources_have_fixed_uids_and_dashboards_use_only_them() -> None:
    uids = provisioned_uids()
    assert uids == {"spoiler-prometheus", "spoiler-postgres"}
    for file in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(file.read_text())
        assert board["schemaVersion"] == dashboards.SCHEMA_VERSION
        assert {v["name"] for v in board["templating"]["list"]} == {"model_version", "window"}
        assert dashboards.lint(board, uids, known_metrics()) == [], file.name


def test_lint_catches_unknown_uid_and_metric() -> None:
    board = dashboards.build()["model"]
    board["panels"][0]["targets"][0]["expr"] = "spoiler_model_acuracy"
    board["panels"][1]["datasource"] = {"type": "prometheus", "uid": "nope"}
    problems = dashboards.lint(board, provisioned_uids(), known_metrics())
    assert any("unknown metric spoiler_model_acuracy" in p for p in problems)
    assert any("unknown datasource uid nope" in p for p in problems)


def test_provider_points_at_the_mounted_folder() -> None:
    conf = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "spoiler.yml").read_text())
    provider = conf["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
