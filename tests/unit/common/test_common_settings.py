"""load_settings: the environment plus CLI overrides, validated together, errors in one line."""

from __future__ import annotations

import pytest

from spoiler_common.exceptions import ConfigError
from spoiler_common.settings import KafkaSettings, PostgresSettings, load_settings

pytestmark = pytest.mark.unit


def test_overrides_win_over_the_environment_and_none_means_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPOILER_PG_PORT", "6543")
    monkeypatch.setenv("SPOILER_PG_DATABASE", "from_env")
    pg = load_settings(PostgresSettings, database="from_cli", port=None)
    assert (pg.port, pg.database) == (6543, "from_cli")


def test_an_invalid_override_or_variable_names_the_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match="SPOILER_PG_PORT") as caught:
        load_settings(PostgresSettings, port="not a port")
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("SPOILER_KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(ConfigError, match="SPOILER_KAFKA_SECURITY_PROTOCOL"):
        load_settings(KafkaSettings)


def test_the_message_never_repeats_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOILER_KAFKA_CLIENT_OPTIONS", "{hunter2")  # may hold a secret
    with pytest.raises(ConfigError, match="SPOILER_KAFKA_CLIENT_OPTIONS") as caught:
        load_settings(KafkaSettings)
    assert "hunter2" not in str(caught.value)
