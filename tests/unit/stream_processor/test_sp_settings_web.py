"""Settings → Faust/aiokafka configuration, validated CLI overrides, the /predict body parser."""

from __future__ import annotations

import ast
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from spoiler_common.exceptions import ConfigError
from spoiler_common.settings import KafkaSettings
from stream_processor import web
from stream_processor.app import faust_settings
from stream_processor.broker import broker_credentials, broker_urls
from stream_processor.cli import app
from stream_processor.exceptions import BadRequest
from stream_processor.settings import WorkerSettings
from stream_processor.web import parse_predict_body

pytestmark = pytest.mark.unit


def test_broker_urls_from_bootstrap_list() -> None:
    ks = KafkaSettings(bootstrap_servers="a:9092, b:9093")
    assert broker_urls(ks) == ["kafka://a:9092", "kafka://b:9093"]


def test_plaintext_has_no_credentials() -> None:
    assert broker_credentials(KafkaSettings()) is None


def test_sasl_ssl_credentials() -> None:
    ks = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                       sasl_username="u", sasl_password=SecretStr("p"))
    creds = broker_credentials(ks)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == ("u", "p", "SCRAM-SHA-512")
    assert creds.protocol.value == "SASL_SSL" and creds.ssl_context is not None


def test_sasl_without_password_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SPOILER_KAFKA_SASL_PASSWORD"):
        broker_credentials(KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="u"))


def test_faust_settings_never_create_topics_and_are_at_least_once() -> None:
    conf = faust_settings(WorkerSettings(web_port=7000), KafkaSettings())
    assert conf["topic_allow_declare"] is False and conf["topic_disable_leader"] is True
    assert conf["processing_guarantee"] == "at_least_once"
    assert conf["web_port"] == 7000


def test_worker_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOILER_WORKER_BATCH_SIZE", "8")
    monkeypatch.setenv("SPOILER_BUNDLE_PATH", "/models/x")
    s = WorkerSettings()
    assert s.batch_size == 8 and str(s.bundle_path) == "/models/x"


@pytest.mark.parametrize(
    ("body", "texts", "single"),
    [
        ({"text": "a"}, ["a"], True),
        ({"texts": ["a", "b"]}, ["a", "b"], False),
        (["a", "b"], ["a", "b"], False),
    ],
)
def test_predict_body_shapes(body: object, texts: list[str], single: bool) -> None:
    assert parse_predict_body(body, max_texts=10, max_chars=100) == (texts, single)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"nope": 1}, "body must be"),
        ({"texts": []}, "non-empty"),
        ({"texts": "abc"}, "non-empty list"),
        ({"text": 5}, "expected a string"),
        ({"text": "  "}, "empty"),
        ({"text": "x" * 101}, "limit 100"),
        (["a"] * 11, "at most 10"),
        ({"text": "a\x00"}, "NUL"),
        ({"text": "a\ud800"}, "surrogate"),
    ],
)
def test_predict_body_rejections(body: object, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        parse_predict_body(body, max_texts=10, max_chars=100)


def test_cli_overrides_are_validated_like_the_environment(tmp_path: Path) -> None:
    # --web-port 0 used to be copied in unvalidated (model_copy(update=...)).
    result = CliRunner().invoke(app, ["worker", "--web-port", "0"])
    assert result.exit_code == 2
    assert "SPOILER_WORKER_WEB_PORT" in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["check-bundle", "--bundle-path", str(tmp_path / "no")])
    assert missing.exit_code == 2 and str(tmp_path / "no") in missing.output


def test_the_views_do_not_import_the_app() -> None:
    # web.py sees the worker through WebBackend only: no import cycle with app.py.
    tree = ast.parse(Path(web.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "stream_processor.app" not in imported


def test_predict_gate_admits_up_to_its_limit() -> None:
    from stream_processor.web import ConcurrencyGate, busy_body

    gate = ConcurrencyGate(2)
    assert gate.try_enter() and gate.try_enter()
    assert not gate.try_enter()
    body = busy_body(gate)
    assert body["limit"] == 2 and body["in_flight"] == 2
    assert "SPOILER_WORKER_PREDICT_CONCURRENCY" in body["error"]
    gate.leave()
    assert gate.try_enter()
