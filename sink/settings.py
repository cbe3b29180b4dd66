"""The sink's settings, from environment variables prefixed ``SPOILER_SINK_``."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from spoiler_common.settings import settings_config


class SinkSettings(BaseSettings):
    """Consumer group, batching, retries and the metrics port of the PostgreSQL sink."""

    model_config = settings_config("SINK_")

    group_id: str = Field("spoiler-sink", description="Kafka consumer group of all sink processes.")
    client_id: str = Field("spoiler-sink", description="Kafka client id (the PID is appended).")
    instance_id: str | None = Field(
        None,
        description="Static group membership id (`group.instance.id`): a restarted process "
        "with the same id takes its partitions back without a rebalance.",
    )
    session_timeout_ms: int = Field(
        45_000, ge=6_000, description="Kafka session timeout: how soon a dead sink's "
        "partitions move to the others.",
    )
    batch_size: int = Field(
        5000, ge=1, le=100_000, description="Messages per database transaction, at most."
    )
    batch_max_wait_s: float = Field(
        0.5, gt=0, le=60, description="Write a partial batch after this many seconds."
    )
    metrics_host: str = Field("0.0.0.0", description="Address of `/metrics` and `/healthz`.")
    metrics_port: int = Field(
        9102, ge=0, le=65535, description="Port of `/metrics` and `/healthz` (0: no server)."
    )
    migrate_on_start: bool = Field(
        True, description="Apply pending migrations at start (safe with several sinks)."
    )
    retry_initial_s: float = Field(
        0.5, gt=0, description="First wait after a failed database write; doubles each time."
    )
    retry_max_s: float = Field(10.0, gt=0, description="Longest wait between write retries.")
    revoke_flush_timeout_s: float = Field(
        10.0,
        ge=0,
        description="On a rebalance, how long to try writing the pending batch before "
        "dropping it (the next owner re-reads it).",
    )
    shutdown_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM/SIGINT, how long to try writing the last batch."
    )
    connect_timeout_s: int = Field(5, ge=1, description="PostgreSQL connect timeout.")
    dead_letter_max_value_bytes: int = Field(
        262_144,
        ge=1024,
        description="Longest original value copied into a dead letter; longer ones are "
        "truncated (the original stays in its topic at the recorded offset).",
    )
    lag_interval_s: float = Field(
        5.0, gt=0, description="How often the consumer-lag gauge is refreshed."
    )
    stall_after_s: float = Field(
        60.0, gt=0, description="`/healthz` fails when the consume loop has not run for this long."
    )

    @model_validator(mode="after")
    def _retry_order(self) -> SinkSettings:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(
                "SPOILER_SINK_RETRY_MAX_S must be >= SPOILER_SINK_RETRY_INITIAL_S"
            )
        return self


__all__ = ["SinkSettings"]
