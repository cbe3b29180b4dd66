"""The worker's settings, from `SPOILER_WORKER_*` environment variables (and `.env`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field, field_validator

from spoiler_common.batching import DEFAULT_MAX_PADDING_WASTE, DEFAULT_MAX_TEXTS
from spoiler_common.bundle import VariantChoice
from spoiler_common.settings import BundleSettings, settings_config


class WorkerSettings(BundleSettings):
    """The stream worker: which model it serves, how it batches, where it listens.

    `bundle_path` is the shared SPOILER_BUNDLE_PATH (spoiler_common.settings).
    """

    model_config = settings_config("WORKER_")
    deprecated_env = ("SPOILER_WORKER_BUNDLE_PATH",)

    variant: VariantChoice = Field(
        "auto", description="Which ONNX graph to serve: auto = the bundle's `default_variant` "
        "(the fastest graph that passed its parity gate).")
    threads: int = Field(1, ge=1, le=64, description="onnxruntime intra-op threads per worker: "
                         "1 costs the least CPU per review (scale out with more workers); 2 "
                         "halves one long text's latency where a core is free.")
    challenger_path: Path | None = Field(
        None, description="A challenger bundle to score in shadow beside the served one (unset = "
        "off): its predictions go to the shadow-predictions topic, never to the product. "
        "Hot-reloaded like the champion; one that fails to load or to score never affects it.")
    challenger_share: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of reviews the challenger scores, chosen by a "
        "hash of review_id (the same reviews in every worker and on every replay).")
    batch_size: int = Field(
        16, ge=1, le=1024, description="Most reviews handled together (one Kafka batch, "
        "one send and commit; how many texts share a model call is the next two settings).")
    model_batch_texts: int = Field(
        DEFAULT_MAX_TEXTS, ge=1, le=1024, description="Most texts in one onnxruntime call "
        "(1 = one text per call).")
    model_padding_waste: float = Field(
        DEFAULT_MAX_PADDING_WASTE, ge=0.0, lt=1.0, description="Texts share an onnxruntime call "
        "only while at most this share of the call's padded tokens is padding.")
    predict_concurrency: int = Field(
        4, ge=1, le=1024, description="Most `/predict` requests in flight (running or queued "
        "on its own inference thread); more are answered 429 at once.")
    # 5 ms, not 50: an idle stream holds each review until the wait ends, and that wait
    # was a quarter of the median produce -> prediction latency at half capacity; a busy
    # stream fills its batch from the fetched backlog at once either way
    # (benchmarks/stream_processor.py, docs/performance.md).
    batch_wait_ms: float = Field(
        5.0, ge=1.0, le=10_000.0, description="Longest wait for a batch to fill before "
        "running the reviews that have arrived (the latency an idle stream adds to each).")
    app_id: str = Field(
        "spoiler-stream-processor",
        description="Faust app id = Kafka consumer group; workers sharing it split partitions.",
    )
    web_host: str = Field("127.0.0.1", description="Interface of the HTTP server.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the HTTP server.")
    reload_poll_s: float = Field(
        5.0, ge=0.0, description="How often to check the bundle on disk for a change (0 = never)."
    )
    max_text_chars: int = Field(
        20_000, ge=1, description="Longest review text accepted by `/predict`, in characters."
    )
    max_predict_texts: int = Field(256, ge=1, description="Most texts in one `/predict` call.")
    max_dead_letter_bytes: int = Field(
        900_000,
        ge=10_000,
        description="Dead letters larger than this carry a truncated copy of the value "
        "(the topic's max.message.bytes is about 1 MB).",
    )
    commit_interval_s: float = Field(
        1.0, gt=0.0, description="How often acknowledged offsets are committed."
    )
    session_timeout_s: float = Field(
        15.0, ge=6.0, le=300.0,
        description="Kafka group session timeout: how soon a dead worker's partitions move.",
    )
    datadir: Path = Field(
        Path(tempfile.gettempdir()) / "spoiler-worker",
        description="Faust's data directory (no tables are kept; it only needs to be writable).",
    )
    retry_initial_s: float = Field(
        0.5, gt=0.0, description="First wait before retrying a batch whose model call failed on "
        "every text or whose sends Kafka did not confirm; doubles each time.",
    )
    retry_max_s: float = Field(
        30.0, gt=0.0, description="Longest wait between two retries of a batch."
    )
    send_attempts: int = Field(
        5, ge=1, le=100, description="Sends of a batch before giving up: the worker then exits "
        "(code 3) without acknowledging it, and the group re-delivers it.",
    )
    fault_hook: str | None = Field(
        None, description="Fault-injection tests only: `module:function` called before each "
        "message is handled, each model call (champion and challenger) and each send (leave "
        "unset).",
    )
    log_level: str = Field("INFO", description="Logging level.")

    @field_validator("challenger_path", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        # `SPOILER_WORKER_CHALLENGER_PATH=` (as compose passes an unset variable) means
        # off, not the current directory.
        return None if isinstance(value, str) and not value.strip() else value


__all__ = ["WorkerSettings"]
