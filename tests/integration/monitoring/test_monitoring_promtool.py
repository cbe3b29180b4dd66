"""The rule files pass `promtool check rules` and their unit tests, and every alert is tested."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring.exporter import METRICS
from spoiler_common.settings import REPO_ROOT

pytestmark = pytest.mark.integration

PROM = REPO_ROOT / "infra" / "prometheus"
RULES = sorted((PROM / "rules").glob("*.yml"))
TESTS = sorted((PROM / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning", "info"}
# Metrics other services export (docs/architecture.md); the monitor's come from METRICS.
OTHER_METRICS = {
    "up", "spoiler_worker_messages_in_total", "spoiler_worker_predictions_total",
    "spoiler_worker_dead_letters_total", "spoiler_sink_dead_letters_total",
    "spoiler_producer_sent_total", "spoiler_sink_rows_written_total",
    "spoiler_worker_end_to_end_seconds_bucket", "spoiler_worker_inference_seconds_bucket",
    "spoiler_sink_healthy", "spoiler_worker_model_failing", "spoiler_sink_batch_failures",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (apt package prometheus; `make deps`)")
    return found


def rules() -> list[dict]:
    out = []
    for file in RULES:
        for group in yaml.safe_load(file.read_text())["groups"]:
            out += group["rules"]
    return out


def test_promtool_check_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", *map(str, RULES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = subprocess.run([promtool(), "test", "rules", *map(str, TESTS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_for_severity_summary_and_a_unit_test() -> None:
    tested: set[str] = set()
    for file in TESTS:
        for case in yaml.safe_load(file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    alerts = [r for r in rules() if "alert" in r]
    assert alerts
    for rule in alerts:
        assert rule.get("for"), f"{rule['alert']} has no for:"
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["alert"] in tested, f"{rule['alert']} has no firing promtool test"


def test_rules_only_use_known_metrics() -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    known = set(METRICS) | OTHER_METRICS | recorded
    for rule in rules():
        names = set(re.findall(r"\b(spoiler[a-z_:0-9]*|up)\b(?=\s*[{\[)\s]|$)", rule["expr"]))
        unknown = {n for n in names if n not in known and not n.startswith("spoiler:")} | {
            n for n in names if n.startswith("spoiler:") and n not in recorded}
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown {unknown}"


def test_compose_config_is_valid(tmp_path: Path) -> None:
    # The compose variant points at /etc/prometheus/rules; check it with a local copy.
    text = (PROM / "prometheus.compose.yml").read_text()
    (tmp_path / "rules").mkdir()
    for file in RULES:
        shutil.copy(file, tmp_path / "rules" / file.name)
    conf = tmp_path / "prometheus.yml"
    conf.write_text(text.replace("/etc/prometheus/rules/", f"{tmp_path}/rules/"))
    result = subprocess.run([promtool(), "check", "config", str(conf)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {j["job_name"] for j in yaml.safe_load(text)["scrape_configs"]}
    native = {j["job_name"] for j in yaml.safe_load(
        (PROM / "prometheus.yml").read_text())["scrape_configs"]}
    assert jobs == native
