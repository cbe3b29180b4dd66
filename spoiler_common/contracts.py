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
import math
import re
from datetime import UTC, datetime
from itertools import accumulate
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from spoiler_common.exceptions import ContractError

# Longest review text accepted, in characters. IMDB caps reviews far below
# this; anything longer is a broken producer, and would slow the tokenizer.
MAX_TEXT_CHARS = 20_000
MAX_SUMMARY_CHARS = 1_000
REVIEW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
# Bounds checked before parsing: the topics' max.message.bytes, and a depth far
# beyond any contract (they are flat) that keeps json's recursion well clear of
# Python's limit.
MAX_MESSAGE_BYTES = 1_048_588
MAX_DEPTH = 32
# PostgreSQL's integer types: every integer a contract carries is stored in one.
INT4_MAX = 2**31 - 1
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
# Timestamps must be timezone-aware and plausible: outside these years they are a
# broken clock, and far-out values overflow date arithmetic downstream.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC)


def _plausible(value: datetime) -> datetime:
    if not MIN_TIMESTAMP <= value < MAX_TIMESTAMP:
        raise ValueError(
            f"timestamp out of range: must lie in [{MIN_TIMESTAMP:%Y-%m-%d}, "
            f"{MAX_TIMESTAMP:%Y-%m-%d}) UTC"
        )
    return value


ReviewId = Annotated[StrictStr, Field(pattern=REVIEW_ID_PATTERN, description="Stable id.")]
Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible)]
Int4 = Annotated[StrictInt, Field(ge=0, le=INT4_MAX)]
Int8 = Annotated[StrictInt, Field(ge=0, le=INT8_MAX)]
# Floats are finite (NaN and infinities are refused by the parser as well).
Finite = Annotated[StrictFloat, Field(allow_inf_nan=False)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Contract(BaseModel):
    # Unknown fields are ignored, not rejected: a newer producer may add
    # optional fields without breaking older consumers (forward compatible).
    model_config = ConfigDict(extra="ignore", frozen=True)

    topic_role: ClassVar[str]
    # Versions this reader accepts; writers write the newest (the field's default).
    versions: ClassVar[frozenset[int]] = frozenset({1})
    added_in: ClassVar[dict[str, int]] = {}
    # The field the Kafka key must equal (None: any key).
    key_field: ClassVar[str | None] = "review_id"


class ReviewPublished(_Contract):
    """A review as published on the reviews topic. Key: ``review_id``."""

    topic_role: ClassVar[str] = "reviews"

    schema_version: Literal[1] = 1
    review_id: ReviewId
    produced_at: Timestamp = Field(description="When the producer sent it (ISO 8601, UTC).")
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


ModelRole = Literal["champion", "challenger"]


class SpoilerPredicted(_Contract):
    """A model's verdict on one review. Key: ``review_id``.

    Version 2 added ``role``: the champion's predictions are the product (the
    predictions topic), a challenger's are scored in shadow on the same reviews
    (the shadow-predictions topic). A version-1 message is a champion's: it
    predates shadow scoring, so its ``role`` is ``champion`` whatever it says.
    """

    topic_role: ClassVar[str] = "predictions"
    versions: ClassVar[frozenset[int]] = frozenset({1, 2})
    # Fields a schema version introduced: the older versions' schemas lack them.
    added_in: ClassVar[dict[str, int]] = {"role": 2}

    schema_version: Literal[1, 2] = 2
    review_id: ReviewId
    role: ModelRole = Field(
        "champion", description="champion: the served prediction (the product); challenger: "
        "a shadow model scored on the same review for comparison only. Added in version 2.")
    spoiler_probability: Finite = Field(ge=0.0, le=1.0)
    is_spoiler: StrictBool = Field(description="spoiler_probability >= threshold.")
    threshold: Finite = Field(ge=0.0, le=1.0)
    # Bounded: both are in the primary key's index, whose rows PostgreSQL caps (~2.7 kB).
    model_name: StrictStr = Field(min_length=1, max_length=128)
    model_version: StrictStr = Field(min_length=1, max_length=128)
    produced_at: Timestamp = Field(description="The review's produced_at, copied through.")
    predicted_at: Timestamp
    inference_ms: Finite = Field(ge=0.0, description="Model time of the batch, per review.")
    queue_ms: Finite = Field(ge=0.0, description="Time from broker append to batch start.")
    end_to_end_ms: Finite = Field(ge=0.0, description="predicted_at - produced_at.")
    input_tokens: Int4 | None = Field(None, description="Tokens before truncation.")
    unknown_tokens: Int4 | None = Field(None, description="[UNK] tokens produced.")

    @model_validator(mode="before")
    @classmethod
    def _v1_is_champion(cls, data: Any) -> Any:
        # Version 1 had no roles: every v1 prediction is the served model's.
        if isinstance(data, dict) and data.get("schema_version") == 1 and "role" in data:
            data = {k: v for k, v in data.items() if k != "role"}
        return data


class LabelArrived(_Contract):
    """Delayed ground truth for one review. Key: ``review_id``."""

    topic_role: ClassVar[str] = "labels"

    schema_version: Literal[1] = 1
    review_id: ReviewId
    is_spoiler: StrictBool
    labelled_at: Timestamp
    source: StrictStr = Field("dataset", description="Where the label came from.")


class DeadLetter(_Contract):
    """A message some service could not accept, with why. Key: the original key."""

    topic_role: ClassVar[str] = "dead_letters"
    key_field: ClassVar[str | None] = None

    schema_version: Literal[1] = 1
    # Lengths bounded: these columns are indexed, and PostgreSQL caps index rows.
    service: StrictStr = Field(
        max_length=100, description="producer | stream_processor | sink | ..."
    )
    reason: StrictStr = Field(
        max_length=100,
        description="Stable reason code (spoiler_common.dead_letters.DeadLetterReason).",
    )
    error: StrictStr = Field(description="Human-readable detail: field, expected, got.")
    source_topic: StrictStr | None = Field(None, max_length=255)
    partition: Int4 | None = None
    offset: Int8 | None = None
    key: StrictStr | None = Field(None, description="Original key, UTF-8 text or base64.")
    key_encoding: Literal["utf-8", "base64"] = Field(
        "utf-8", description="How `key` is written (base64 when not UTF-8 or holding NUL)."
    )
    value: StrictStr = Field(description="Original value, UTF-8 text or base64.")
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    failed_at: Timestamp

    def original_value(self) -> bytes:
        if self.value_encoding == "base64":
            return base64.b64decode(self.value)
        return self.value.encode("utf-8")

    def original_key(self) -> bytes | None:
        if self.key is None:
            return None
        if self.key_encoding == "base64":
            return base64.b64decode(self.key)
        return self.key.encode("utf-8")

    @model_validator(mode="after")
    def _base64_decodes(self) -> DeadLetter:
        for name, text, encoding in (("value", self.value, self.value_encoding),
                                     ("key", self.key, self.key_encoding)):
            if text is not None and encoding == "base64":
                try:
                    base64.b64decode(text, validate=True)
                except ValueError:
                    raise ValueError(f"{name} is marked base64 but does not decode") from None
        return self


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
    # ASCII only: the description travels in error texts that must stay storable.
    text = json.dumps(value, default=repr) if value is not None else "null"
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
    if kind == "string_unicode":
        return _surrogate_error(field)
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


# ---- parsing: every way bytes can be wrong, each with its own reason --------------------

_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _depth(text: str) -> int:
    """Deepest nesting of arrays/objects in JSON text (strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the number of openers: the common, cheap case
    brackets = _BRACKETS.sub("", _STRING_LITERAL.sub("", text))
    return max(accumulate(_DEPTH_STEP[c] for c in brackets), default=0)


def _number_error(detail: str) -> ContractError:
    return ContractError(
        "invalid_number", f"value holds {detail}", expected="a finite number that fits 64 bits",
        got=detail,
    )


def _parse_int(digits: str) -> int:
    # Checked on the digit string, before int(): Python refuses more than 4,300
    # digits with a ValueError, and PostgreSQL holds nothing beyond int8.
    if len(digits.lstrip("-")) > 19 or not INT8_MIN <= (value := int(digits)) <= INT8_MAX:
        shown = digits if len(digits) <= 24 else f"{digits[:20]}... ({len(digits)} digits)"
        raise _number_error(f"the integer {shown}, outside the 64-bit range")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _number_error(f"the number {text[:40]}, which overflows a double")
    return value


def _parse_constant(name: str) -> Any:
    raise _number_error(f"{name}, which JSON does not allow")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ContractError(
                "duplicate_key",
                f"key {_describe(key)} appears twice in one object (which one counts is "
                "up to each parser)",
                field=key if key.isprintable() else None, expected="unique keys",
                got=_describe(key),
            )
        obj[key] = value
    return obj


def _surrogate_error(field: str) -> ContractError:
    return ContractError(
        "unpaired_surrogate",
        f"field '{field}' holds an unpaired UTF-16 surrogate (such as \\ud800), which UTF-8 "
        "and PostgreSQL cannot store",
        field=field, expected="valid Unicode text", got="unpaired surrogate",
    )


def _check_text(value: str, field: str) -> None:
    if "\x00" in value:
        # An escaped \u0000 decodes to NUL, which PostgreSQL text cannot store.
        raise ContractError(
            "nul_byte",
            f"field '{field}' contains a NUL character (\\u0000)",
            field=field,
            expected="text without NUL",
            got="NUL",
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _surrogate_error(field) from None


def check_texts(data: Any) -> None:
    """Refuse NUL and unpaired surrogates in every key and string, at any depth."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}" if path else str(key)
                _check_text(str(key), "<key>" if not key.isprintable() else where)
                if isinstance(value, str):
                    _check_text(value, where)
                elif isinstance(value, dict | list):
                    stack.append((value, where))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                where = f"{path}[{i}]"
                if isinstance(value, str):
                    _check_text(value, where)
                elif isinstance(value, dict | list):
                    stack.append((value, where))


def json_decoder() -> json.JSONDecoder:
    """json's decoder with the contract's number and key rules (ContractError on a breach)."""
    return json.JSONDecoder(
        object_pairs_hook=_object, parse_int=_parse_int, parse_float=_parse_float,
        parse_constant=_parse_constant,
    )


_DECODER = json_decoder()


def parse(raw: bytes | str | None) -> dict[str, Any]:
    """Bytes to a JSON object, or ContractError saying what is wrong; never anything else."""
    if raw is None:
        raise ContractError("empty_message", "message has no value (tombstone)", expected="JSON")
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ContractError(
            "message_too_large",
            f"value has {size} bytes, limit {MAX_MESSAGE_BYTES}",
            expected=f"at most {MAX_MESSAGE_BYTES} bytes", got=f"{size} bytes",
        )
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
    if text.startswith("\ufeff"):
        raise ContractError(
            "invalid_json", "value starts with a byte order mark (U+FEFF); send plain UTF-8",
            expected="JSON object", got="BOM",
        )
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise ContractError(
            "too_deeply_nested",
            f"value nests arrays/objects {depth} deep, limit {MAX_DEPTH}",
            expected=f"at most {MAX_DEPTH} levels", got=f"{depth} levels",
        )
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ContractError(
            "invalid_json",
            f"value is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            expected="JSON object",
        ) from None
    except (ValueError, RecursionError) as exc:  # ContractError is not a ValueError
        raise ContractError(
            "invalid_json", f"value is not JSON: {type(exc).__name__}: {str(exc)[:200]}",
            expected="JSON object",
        ) from None
    if not isinstance(data, dict):
        raise ContractError(
            "not_object",
            f"value is a JSON {type(data).__name__}, not an object",
            expected="JSON object",
            got=type(data).__name__,
        )
    return data


def decode(raw: bytes | str | None, model: type[M]) -> M:
    """Parse and validate one message value against `model`'s contract.

    Raises ContractError with a reason code, and nothing else, for any input: a
    message it accepts encodes again and fits its PostgreSQL table (the fuzz
    tests in tests/unit/common and tests/integration check both).
    """
    try:
        return validate(parse(raw), model)
    except ContractError:
        raise
    except Exception as exc:  # a bug here must not become a crash: name it instead
        raise ContractError(
            "internal_error", f"the validator failed: {type(exc).__name__}: {str(exc)[:500]}",
            expected=model.__name__,
        ) from exc


def check_key(message: _Contract, key: bytes | None) -> None:
    """The Kafka key must equal the message's key field (`review_id`); ContractError if not."""
    field = message.key_field
    if field is None:
        return
    expected: str = getattr(message, field)
    if key is None:
        raise ContractError(
            "key_mismatch",
            f"message has no key; expected the {field} {expected!r}",
            field="key",
            expected=expected,
            got="null",
        )
    if key != expected.encode("utf-8"):
        shown = _describe(key[:80].decode("utf-8", errors="replace"))
        raise ContractError(
            "key_mismatch",
            f"key {shown} does not match {field} {expected!r}",
            field="key",
            expected=expected,
            got=shown,
        )


def decode_record(key: bytes | None, value: bytes | None, model: type[M]) -> M:
    """Decode a Kafka record: the value by its contract, then the key rule.

    What every consumer calls, so the worker and the sink reject the same bytes
    with the same reason.
    """
    message = decode(value, model)
    check_key(message, key)
    return message


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
    check_texts(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _translate(dict(exc.errors()[0]), model) from None


def encode(message: _Contract) -> bytes:
    """Serialise a contract model to its wire form (compact UTF-8 JSON)."""
    return message.model_dump_json(exclude_none=False).encode("utf-8")


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
    "INT4_MAX",
    "INT8_MAX",
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_TIMESTAMP",
    "MIN_TIMESTAMP",
    "DeadLetter",
    "LabelArrived",
    "ModelRole",
    "ReviewPublished",
    "SpoilerPredicted",
    "check_key",
    "check_texts",
    "decode",
    "decode_record",
    "encode",
    "headers_for",
    "json_decoder",
    "parse",
    "utc_now",
    "validate",
]
