"""The producer's settings, from environment variables prefixed ``SPOILER_PRODUCER_``.

CLI options override the pacing and label defaults per run; these are what an
operator sets once (in `.env` or the compose file).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from spoiler_common.settings import settings_config


class ProducerSettings(BaseSettings):
    """Client, metrics, label and buffering defaults of the review producer."""

    model_config = settings_config("PRODUCER_")

    client_id: str = Field("spoiler-producer", description="Kafka client id.")
    source: str = Field(
        "producer", description="Value of the `source` header on every message it sends."
    )
    metrics_host: str = Field("0.0.0.0", description="Address of the `/metrics` server.")
    metrics_port: int = Field(
        9101, ge=0, le=65535, description="Port of `/metrics` (0: no server)."
    )
    label_delay_s: float = Field(
        30.0, ge=0, description="Default seconds between a review and its label (`--label-delay`)."
    )
    label_fraction: float = Field(
        1.0, ge=0, le=1, description="Default share of reviews whose label is sent "
        "(`--label-fraction`); the rest are withheld."
    )
    shuffle_buffer: int = Field(
        10_000, ge=1, description="Records held by `--shuffle` (memory stays bounded by it)."
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, description="How long to wait for the broker's metadata at start."
    )
    flush_timeout_s: float = Field(
        60.0, gt=0, description="How long to wait for outstanding deliveries at exit."
    )
    progress_interval_s: float = Field(
        10.0, gt=0, description="Seconds between progress log lines when not on a terminal."
    )
    queue_max_messages: int = Field(
        1_000_000, ge=1000, le=10_000_000,
        description="librdkafka `queue.buffering.max.messages`: how far the sender may run "
        "ahead of the broker.",
    )
    linger_ms: int = Field(20, ge=0, description="librdkafka `linger.ms` (batching delay).")
    batch_size: int = Field(
        1_000_000, ge=1024, description="librdkafka `batch.size` in bytes."
    )
    compression: str = Field("lz4", description="librdkafka `compression.type`.")
