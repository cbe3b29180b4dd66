"""Faust (aiokafka) broker configuration from the shared KafkaSettings.

The other services use confluent-kafka and `KafkaSettings.librdkafka()`; Faust
needs URLs and a credentials object instead. `client_options` are librdkafka
names and are not translated: only the settings below reach the worker.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from spoiler_common.exceptions import ConfigError
from spoiler_common.settings import KafkaSettings


def broker_urls(settings: KafkaSettings) -> list[str]:
    """`host:port,host:port` → Faust's `["kafka://host:port", ...]`."""
    hosts = [h.strip() for h in settings.bootstrap_servers.split(",") if h.strip()]
    if not hosts:
        raise ConfigError("SPOILER_KAFKA_BOOTSTRAP_SERVERS is empty: set host:port of a broker.")
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    return ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH, cafile=settings.ssl_ca_location or None
    )


def broker_credentials(settings: KafkaSettings) -> Any:
    """Faust `broker_credentials` for the configured security protocol (None for PLAINTEXT)."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    if not (settings.sasl_username and settings.sasl_password is not None):
        raise ConfigError(
            f"SPOILER_KAFKA_SECURITY_PROTOCOL={protocol} needs SPOILER_KAFKA_SASL_USERNAME "
            "and SPOILER_KAFKA_SASL_PASSWORD."
        )
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password.get_secret_value(),
        mechanism=settings.sasl_mechanism or "PLAIN",
        ssl_context=_ssl_context(settings) if protocol == "SASL_SSL" else None,
    )


__all__ = ["broker_credentials", "broker_urls"]
