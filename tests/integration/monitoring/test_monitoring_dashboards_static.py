"""Dashboards and provisioning: generated files are current, uids and metrics are known."""

from __future__ import annotations

import copy
from importlib.metadata import version

import pytest
import yaml

from monitoring import dashboards
from monitoring.exporter import METRICS
from spoiler_common.settings import REPO_ROOT
from tests.integration.monitoring.dashboard_lint import DASHBOARD_DIR, committed, lint

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
    built = dashboards.build()
    assert {p.stem for p in DASHBOARD_DIR.glob("*.json")} == set(built)
    for name, board in built.items():
        path = DASHBOARD_DIR / f"{name}.json"
        assert path.read_text("utf-8") == dashboards.render(board), (
            f"{path} is stale: run `make dashboards`")


def test_sdk_targets_the_grafana_compose_runs() -> None:
    """grafana-foundation-sdk versions are `<build>!<grafana version>`: same minor as compose."""
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    image_tag = compose["services"]["grafana"]["image"].rsplit(":", 1)[1]
    sdk_grafana = version("grafana-foundation-sdk").split("!")[-1]
    assert sdk_grafana.split(".")[:2] == image_tag.split(".")[:2], (sdk_grafana, image_tag)


def test_datasources_have_fixed_uids_and_dashboards_use_only_them() -> None:
    uids = provisioned_uids()
    assert uids == {"spoiler-prometheus", "spoiler-postgres"}
    boards = committed()
    assert set(boards) == {"pipeline", "model", "data"}
    for name, board in boards.items():
        assert board["schemaVersion"] == 39, name  # Grafana 11.2's classic JSON model
        assert {v["name"] for v in board["templating"]["list"]} == {"model_version", "window"}
        assert lint(board, uids, known_metrics()) == [], name


def test_lint_catches_unknown_uid_and_metric() -> None:
    board = copy.deepcopy(committed()["model"])
    board["panels"][0]["targets"][0]["expr"] = "spoiler_model_acuracy"
    board["panels"][1]["datasource"] = {"type": "prometheus", "uid": "nope"}
    problems = lint(board, provisioned_uids(), known_metrics())
    assert any("unknown metric spoiler_model_acuracy" in p for p in problems)
    assert any("unknown datasource uid nope" in p for p in problems)


def test_lint_catches_a_broken_layout() -> None:
    board = copy.deepcopy(committed()["pipeline"])
    board["panels"][1]["gridPos"]["x"] -= 1  # into the first panel
    board["panels"][2]["gridPos"]["w"] += 1  # past column 24
    board["panels"][3]["id"] = board["panels"][4]["id"]
    problems = lint(board, provisioned_uids(), known_metrics())
    assert "spoiler-pipeline/Service health: overlaps Newest prediction age" in problems
    assert any("off the 24-column grid" in p for p in problems), problems
    assert any("panel ids repeat" in p for p in problems), problems


def test_provider_points_at_the_mounted_folder() -> None:
    conf = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "spoiler.yml").read_text())
    provider = conf["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
