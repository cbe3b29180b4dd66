"""All configuration, from environment variables prefixed ``SPOILER_`` (and ``.env``).

Nothing else in the project reads ``os.environ``. Each area has one class; a
service builds the classes it needs once, at start-up, in its bootstrap. The
README's settings table is generated from these classes (``make docs``) and a
test fails when the two drift apart.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from spoiler_common.exceptions import ConfigError

ENV_PREFIX = "SPOILER_"
REPO_ROOT = Path(__file__).resolve().parent.parent
S = TypeVar("S", bound=BaseSettings)
log = logging.getLogger(__name__)


def settings_config(prefix: str) -> SettingsConfigDict:
    """The config every settings class uses: `SPOILER_<prefix>` variables, then `.env`."""
    return SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}{prefix}",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )


def load_settings(cls: type[S], **overrides: Any) -> S:
    """`cls` from the environment (and `.env`), with a CLI's overrides on top, all validated.

    Overrides that are None are left out (an option not given). An invalid value,
    from either side, raises ConfigError naming the variable in one line, which the
    CLIs print before exiting with code 2. (`model_copy(update=...)` would skip the
    validation: never use it for overrides.)
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return cls(**given)
    except ValidationError as exc:
        # The values themselves are left out of the message: they may be secrets.
        raise _invalid(cls, [(e["loc"][0] if e["loc"] else "*", e["msg"])
                             for e in exc.errors()]) from exc
    except SettingsError as exc:  # a JSON-valued variable that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        raise _invalid(cls, [(field.group(1) if field else "*", "not valid JSON")]) from exc


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable of `cls.field` (its alias, for a field that has one)."""
    alias = cls.model_fields[field].validation_alias if field in cls.model_fields else None
    if isinstance(alias, AliasChoices):
        alias = alias.choices[0]
    if isinstance(alias, str):
        return alias.upper()
    if field.upper().startswith(ENV_PREFIX):  # an error located at an alias
        return field.upper()
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def _invalid(cls: type[BaseSettings], problems: list[tuple[object, str]]) -> ConfigError:
    named = "; ".join(f"{env_name(cls, str(field))}: {msg}" for field, msg in problems)
    return ConfigError(f"invalid setting {named}; fix the environment variable, `.env` or "
                       "the command-line option")


class KafkaSettings(BaseSettings):
    """How every service reaches Kafka. SASL/SSL options let it talk to a managed cluster."""

    model_config = settings_config("KAFKA_")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated brokers.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka `security.protocol`."
    )
    sasl_mechanism: str | None = Field(None, description="e.g. PLAIN, SCRAM-SHA-512.")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    ssl_ca_location: str | None = Field(None, description="CA bundle path for SSL.")
    client_options: dict[str, str] = Field(
        default_factory=dict,
        description="JSON object of extra librdkafka options passed through unchanged, "
        'e.g. `{"client.dns.lookup":"use_all_dns_ips"}`.',
    )
    topic_prefix: str = Field(
        "", description="Prepended to every topic name (isolates tenants and test runs)."
    )

    @field_validator("client_options", mode="before")
    @classmethod
    def _parse_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"SPOILER_KAFKA_CLIENT_OPTIONS must be a JSON object: {exc}"
                ) from exc
        return value

    def librdkafka(self) -> dict[str, Any]:
        """The common part of a confluent-kafka (librdkafka) client config."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        conf.update(self.client_options)
        return conf


class PostgresSettings(BaseSettings):
    """Where the sink writes and the monitor reads."""

    model_config = settings_config("PG_")

    host: str = Field("127.0.0.1", description="PostgreSQL host.")
    port: int = Field(5432, description="PostgreSQL port.")
    database: str = Field("spoiler", description="Database name.")
    user: str = Field("spoiler", description="Role the services log in as.")
    password: SecretStr | None = Field(
        None,
        description="Password of that role (secret, required). `make up` writes a random "
        "one to `.env` on first run.",
    )
    sslmode: str = Field("prefer", description="libpq `sslmode`.")

    def conninfo(self, database: str | None = None) -> str:
        """A libpq connection string; the password never appears in logs (see __repr__)."""
        if self.password is None:
            raise ConfigError(
                "SPOILER_PG_PASSWORD is not set: copy .env.example to .env and set it, "
                "or run `make up`, which generates one."
            )
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=database or self.database,
            user=self.user,
            password=self.password.get_secret_value(),
            sslmode=self.sslmode,
            application_name="spoiler-stream",
        )


class PrometheusSettings(BaseSettings):
    """Where Prometheus is, for the native stack and the tests that query it."""

    model_config = settings_config("PROMETHEUS_")

    url: str = Field("http://127.0.0.1:9090", description="Prometheus base URL.")


class StackSettings(BaseSettings):
    """The native stack (`make up`): where state lives and which ports it binds."""

    model_config = settings_config("STACK_")

    state_dir: Path = Field(
        REPO_ROOT / ".state", description="Logs, data and PID files of the native stack."
    )
    kafka_port: int = Field(9092, description="Broker listener port.")
    kafka_controller_port: int = Field(9093, description="KRaft controller port.")
    kafka_heap: str = Field("-Xms256m -Xmx768m", description="JVM heap flags for the broker.")
    prometheus_port: int = Field(9090, description="Prometheus listen port.")
    start_timeout_s: float = Field(90.0, description="How long to wait for each service.")


# The served bundle: the worker loads it, the monitor reads its reference, `make up`,
# `ensure-bundle`, `promote` and `predict` default to it. Written here once.
DEFAULT_BUNDLE_PATH = REPO_ROOT / "models" / "serving"
BUNDLE_PATH_ENV = "SPOILER_BUNDLE_PATH"
# The names before issue 13 (one per service): still read, with a warning, so existing
# .env files keep working; SPOILER_BUNDLE_PATH wins when both are set.
DEPRECATED_BUNDLE_PATH_ENV = ("SPOILER_WORKER_BUNDLE_PATH", "SPOILER_MONITOR_BUNDLE_PATH")


class BundleSettings(BaseSettings):
    """Which model bundle is served: the worker scores with it, the monitor compares with it.

    WorkerSettings and MonitorSettings inherit this one setting; each also reads its
    own old name (and only its own) as a deprecated alias.
    """

    model_config = settings_config("")
    # Old names this class still reads: the worker its own, the monitor its own.
    deprecated_env: ClassVar[tuple[str, ...]] = DEPRECATED_BUNDLE_PATH_ENV

    bundle_path: Path = Field(
        DEFAULT_BUNDLE_PATH,
        # An alias, so the classes that inherit it (other prefixes) read this same name.
        validation_alias=AliasChoices(BUNDLE_PATH_ENV),
        description="Model bundle directory (or a symlink to one: swap it to roll out a "
        "model): the worker serves it, the monitor reads its `reference`, thresholds and "
        "floors. Replaces `SPOILER_WORKER_BUNDLE_PATH` and `SPOILER_MONITOR_BUNDLE_PATH`, "
        "still read (with a warning) when this one is unset.",
    )
    # Declared only so that the environment and `.env` are read under the old names;
    # `_deprecated_names` moves their value to bundle_path. Left out of docs and dumps.
    worker_bundle_path: Path | None = Field(
        None, validation_alias=DEPRECATED_BUNDLE_PATH_ENV[0], exclude=True,
        deprecated=f"use {BUNDLE_PATH_ENV}")
    monitor_bundle_path: Path | None = Field(
        None, validation_alias=DEPRECATED_BUNDLE_PATH_ENV[1], exclude=True,
        deprecated=f"use {BUNDLE_PATH_ENV}")

    @model_validator(mode="before")
    @classmethod
    def _deprecated_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "bundle_path" in data:  # given by name (a CLI override, a test)
            data[BUNDLE_PATH_ENV] = data.pop("bundle_path")
        for name in DEPRECATED_BUNDLE_PATH_ENV:
            value = data.pop(name, None)
            if value is None or name not in cls.deprecated_env:
                continue
            if BUNDLE_PATH_ENV in data:
                log.warning("%s is deprecated and ignored: the bundle path is given already "
                            "(%s or an option)", name, BUNDLE_PATH_ENV)
            else:
                log.warning("%s is deprecated: rename it to %s in the environment or .env "
                            "(read for now)", name, BUNDLE_PATH_ENV)
                data[BUNDLE_PATH_ENV] = value
        return data


__all__ = [
    "BUNDLE_PATH_ENV",
    "DEFAULT_BUNDLE_PATH",
    "DEPRECATED_BUNDLE_PATH_ENV",
    "ENV_PREFIX",
    "REPO_ROOT",
    "BundleSettings",
    "KafkaSettings",
    "PostgresSettings",
    "PrometheusSettings",
    "StackSettings",
    "env_name",
    "load_settings",
    "settings_config",
]
