"""Message contracts: one typed model per topic, and the only validator.

Values are UTF-8 JSON objects carrying ``schema_version``. Producers build the
models and call :func:`encode`; consumers call :func:`decode` with the raw
bytes and either get a model or a :class:`ContractError` whose ``reason`` is a
stable code (metric label, dead-letter field) and whose message says which
field, what was expected and what came.

The JSON Schema files in ``spoiler_common/schemas/`` are generated from these
models (``make schemas``); a test fails when they drift.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from spoiler_common.exceptions import ContractError

# Longest review text accepted, in characters. IMDB caps reviews far below
# this; anything longer is a broken producer, and would slow the tokenizer.
MAX_TEXT_CHARS = 20_000
MAX_SUMMARY_CHARS = 1_000
REVIEW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"

ReviewId = Annotated[StrictStr, Field(pattern=REVIEW_ID_PATTERN, description="Stable id.")]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Contract(BaseModel):
    # Unknown fields are ignored, not rejected: a newer producer may add
    # optional fields without breaking older consumers (forward compatible).
    model_config = ConfigDict(extra="ignore", frozen=True)

    topic_role: ClassVar[str]
    versions: ClassVar[frozenset[int]] = frozenset({1})


class ReviewPublished(_Contract):
    """A review as published on the reviews topic. Key: ``review_id``."""

    topic_role: ClassVar[str] = "reviews"

    schema_version: Literal[1] = 1
    review_id: ReviewId
    produced_at: datetime = Field(description="When the producer sent it (ISO 8601, UTC).")
    review_date: StrictStr = Field(description="Date as in the dataset, e.g. '3 February 2017'.")
    movie_id: StrictStr = Field(min_length=1, max_length=64)
    user_id: StrictStr = Field(min_length=1, max_length=64)
    review_text: StrictStr = Field(max_length=MAX_TEXT_CHARS)
    review_summary: StrictStr = Field("", max_length=MAX_SUMMARY_CHARS)
    rating: StrictInt | None = Field(None, ge=1, le=10, description="1-10, or null if absent.")
    is_spoiler: StrictBool | None = Field(
        None, description="Ground truth, normally absent: labels travel on the labels topic."
    )

    @field_validator("review_text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty_text")
        return value


class SpoilerPredicted(_Contract):
    """The model's verdict on one review. Key: ``review_id``."""

    topic_role: ClassVar[str] = "predictions"

    schema_version: Literal[1] = 1
    review_id: ReviewId
    spoiler_probability: StrictFloat = Field(ge=0.0, le=1.0)
    is_spoiler: StrictBool = Field(description="spoiler_probability >= threshold.")
    threshold: StrictFloat = Field(ge=0.0, le=1.0)
    model_name: StrictStr = Field(min_length=1)
    model_version: StrictStr = Field(min_length=1)
    produced_at: datetime = Field(description="The review's produced_at, copied through.")
    predicted_at: datetime
    inference_ms: StrictFloat = Field(ge=0.0, description="Model time of the batch, per review.")
    queue_ms: StrictFloat = Field(ge=0.0, description="Time from broker append to batch start.")
    end_to_end_ms: StrictFloat = Field(ge=0.0, description="predicted_at - produced_at.")
    input_tokens: StrictInt | None = Field(None, ge=0, description="Tokens before truncation.")
    unknown_tokens: StrictInt | None = Field(None, ge=0, description="[UNK] tokens produced.")


class LabelArrived(_Contract):
    """Delayed ground truth for one review. Key: ``review_id``."""

    topic_role: ClassVar[str] = "labels"

    schema_version: Literal[1] = 1
    review_id: ReviewId
    is_spoiler: StrictBool
    labelled_at: datetime
    source: StrictStr = Field("dataset", description="Where the label came from.")


class DeadLetter(_Contract):
    """A message some service could not accept, with why. Key: the original key."""

    topic_role: ClassVar[str] = "dead_letters"

    schema_version: Literal[1] = 1
    service: StrictStr = Field(description="producer | stream_processor | sink | ...")
    reason: StrictStr = Field(description="Stable reason code, e.g. missing_field.")
    error: StrictStr = Field(description="Human-readable detail: field, expected, got.")
    source_topic: StrictStr | None = None
    partition: StrictInt | None = None
    offset: StrictInt | None = None
    key: StrictStr | None = Field(None, description="Original key, decoded as value is.")
    value: StrictStr = Field(description="Original value, UTF-8 text or base64.")
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    failed_at: datetime

    def original_value(self) -> bytes:
        if self.value_encoding == "base64":
            return base64.b64decode(self.value)
        return self.value.encode("utf-8")


CONTRACTS: dict[str, type[_Contract]] = {
    "review": ReviewPublished,
    "prediction": SpoilerPredicted,
    "label": LabelArrived,
    "dead_letter": DeadLetter,
}

M = TypeVar("M", bound=_Contract)

_TYPE_NAMES = {
    "string_type": "string",
    "int_type": "integer",
    "float_type": "number",
    "bool_type": "boolean",
    "datetime_type": "ISO 8601 date-time",
    "datetime_parsing": "ISO 8601 date-time",
    "datetime_from_date_parsing": "ISO 8601 date-time",
    "int_from_float": "integer",
}


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


def _translate(error: dict[str, Any], model: type[_Contract]) -> ContractError:
    field = ".".join(str(p) for p in error["loc"]) or "<message>"
    kind = error["type"]
    got = _describe(error.get("input"))
    if kind == "missing":
        return ContractError(
            "missing_field", f"field '{field}' is required", field=field, expected="present"
        )
    if kind == "value_error" and "empty_text" in str(error.get("msg", "")):
        return ContractError(
            "empty_text",
            f"field '{field}' is empty or whitespace only",
            field=field,
            expected="non-blank text",
            got=got,
        )
    if kind == "string_too_long" and field == "review_text":
        limit = error.get("ctx", {}).get("max_length")
        return ContractError(
            "text_too_long",
            f"field '{field}' has {len(str(error.get('input', '')))} characters, limit {limit}",
            field=field,
            expected=f"at most {limit} characters",
            got=f"{len(str(error.get('input', '')))} characters",
        )
    if kind in _TYPE_NAMES or kind.endswith("_type"):
        expected = _TYPE_NAMES.get(kind, kind.removesuffix("_type"))
        return ContractError(
            "wrong_type",
            f"field '{field}' expected {expected}, got {got}",
            field=field,
            expected=expected,
            got=got,
        )
    expected = str(error.get("msg", kind))
    return ContractError(
        "invalid_value",
        f"field '{field}': {expected}, got {got}",
        field=field,
        expected=expected,
        got=got,
    )


def decode(raw: bytes | str | None, model: type[M]) -> M:
    """Parse and validate one message value against `model`'s contract.

    Raises ContractError with a reason code; never anything else for bad input.
    """
    if raw is None:
        raise ContractError("empty_message", "message has no value (tombstone)", expected="JSON")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(
                "invalid_utf8",
                f"value is not UTF-8: byte {exc.start} is {raw[exc.start:exc.start + 1]!r}",
                expected="UTF-8",
                got=f"byte {raw[exc.start:exc.start + 1]!r} at {exc.start}",
            ) from None
    else:
        text = raw
    if "\x00" in text:
        raise ContractError(
            "nul_byte",
            f"value contains a NUL character at position {text.index(chr(0))}",
            expected="text without NUL",
            got="NUL",
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(
            "invalid_json",
            f"value is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            expected="JSON object",
        ) from None
    if not isinstance(data, dict):
        raise ContractError(
            "not_object",
            f"value is a JSON {type(data).__name__}, not an object",
            expected="JSON object",
            got=type(data).__name__,
        )
    for key, value in data.items():
        # An escaped \u0000 decodes to NUL, which PostgreSQL text cannot store.
        if isinstance(value, str) and "\x00" in value:
            raise ContractError(
                "nul_byte",
                f"field '{key}' contains a NUL character (\\u0000)",
                field=str(key),
                expected="text without NUL",
                got="NUL",
            )
    return validate(data, model)


def validate(data: dict[str, Any], model: type[M]) -> M:
    """Validate an already-parsed JSON object (see :func:`decode`)."""
    version = data.get("schema_version")
    if version is None:
        raise ContractError(
            "missing_field",
            "field 'schema_version' is required",
            field="schema_version",
            expected=f"one of {sorted(model.versions)}",
        )
    if type(version) is not int or version not in model.versions:
        raise ContractError(
            "unknown_schema_version",
            f"schema_version {_describe(version)} is not supported by this consumer "
            f"(supports {sorted(model.versions)}); upgrade the consumer or fix the producer",
            field="schema_version",
            expected=f"one of {sorted(model.versions)}",
            got=_describe(version),
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _translate(dict(exc.errors()[0]), model) from None


def encode(message: _Contract) -> bytes:
    """Serialise a contract model to its wire form (compact UTF-8 JSON)."""
    return message.model_dump_json(exclude_none=False).encode("utf-8")


def dead_letter_for(
    raw_value: bytes | None,
    error: ContractError | str,
    *,
    service: str,
    reason: str | None = None,
    raw_key: bytes | None = None,
    source_topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """Wrap a rejected message so nothing is lost: original bytes plus where and why."""
    value_bytes = raw_value or b""
    try:
        value, encoding = value_bytes.decode("utf-8"), "utf-8"
        if "\x00" in value:
            raise UnicodeDecodeError("utf-8", value_bytes, 0, 1, "NUL")
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(value_bytes).decode("ascii"), "base64"
    key: str | None = None
    if raw_key is not None:
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError:
            key = base64.b64encode(raw_key).decode("ascii")
    if isinstance(error, ContractError):
        code, detail = error.reason, str(error.args[0])
    else:
        code, detail = reason or "error", error
    return DeadLetter(
        service=service,
        reason=reason or code,
        error=detail,
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        value_encoding=encoding,  # type: ignore[arg-type]
        failed_at=utc_now(),
    )


SCHEMA_VERSION_HEADER = "schema_version"
CONTENT_TYPE = "application/json"


def headers_for(message: _Contract, source: str) -> list[tuple[str, bytes]]:
    """Kafka headers every producer in the project sets."""
    return [
        (SCHEMA_VERSION_HEADER, str(message.schema_version).encode()),  # type: ignore[attr-defined]
        ("content-type", CONTENT_TYPE.encode()),
        ("source", source.encode()),
    ]


__all__ = [
    "CONTRACTS",
    "MAX_TEXT_CHARS",
    "DeadLetter",
    "LabelArrived",
    "ReviewPublished",
    "SpoilerPredicted",
    "dead_letter_for",
    "decode",
    "encode",
    "headers_for",
    "utc_now",
    "validate",
]
