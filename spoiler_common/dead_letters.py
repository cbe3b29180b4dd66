"""Dead letters: the one list of reason codes, and the one way to build a dead letter.

Every consumer (worker, sink) and the producer's reader end each message as
either processed or rejected with a reason from :class:`DeadLetterReason`.
:func:`build_dead_letter` turns a rejected message into a ``DeadLetter`` that
always encodes and always fits on the dead-letter topic and in PostgreSQL:
the original bytes are kept as UTF-8 text or base64, text fields are made
storable, and an oversized value is cut (the original stays in its topic at
the recorded offset).
"""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Literal

from spoiler_common.contracts import INT4_MAX, INT8_MAX, DeadLetter, encode, utc_now
from spoiler_common.exceptions import ContractError


class DeadLetterReason(StrEnum):
    """Stable reason codes (metric labels, `dead_letters.reason`). Meanings in REASONS."""

    EMPTY_MESSAGE = "empty_message"
    MESSAGE_TOO_LARGE = "message_too_large"
    INVALID_UTF8 = "invalid_utf8"
    NUL_BYTE = "nul_byte"
    UNPAIRED_SURROGATE = "unpaired_surrogate"
    INVALID_JSON = "invalid_json"
    TOO_DEEPLY_NESTED = "too_deeply_nested"
    INVALID_NUMBER = "invalid_number"
    DUPLICATE_KEY = "duplicate_key"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    KEY_MISMATCH = "key_mismatch"
    INFERENCE_ERROR = "inference_error"
    DB_REJECTED = "db_rejected"
    UNREADABLE_DEAD_LETTER = "unreadable_dead_letter"
    TRUNCATED_LINE = "truncated_line"
    TRUNCATED_FILE = "truncated_file"
    INTERNAL_ERROR = "internal_error"


# One line per reason: the README's and the docs' tables are checked against it.
REASONS: dict[DeadLetterReason, str] = {
    DeadLetterReason.EMPTY_MESSAGE: "tombstone: the record has no value",
    DeadLetterReason.MESSAGE_TOO_LARGE: "value larger than the topics' max.message.bytes "
    "(1,048,588)",
    DeadLetterReason.INVALID_UTF8: "bytes that are not UTF-8 (UTF-16, Latin-1, binary...)",
    DeadLetterReason.NUL_BYTE: "a NUL character, raw or escaped `\\u0000`, in any key or "
    "string (PostgreSQL text cannot hold it)",
    DeadLetterReason.UNPAIRED_SURROGATE: "an escaped lone UTF-16 surrogate such as "
    "`\\ud800` (UTF-8 and PostgreSQL cannot hold it)",
    DeadLetterReason.INVALID_JSON: "not JSON, or JSON preceded by a byte order mark",
    DeadLetterReason.TOO_DEEPLY_NESTED: "arrays/objects nested more than 32 levels deep",
    DeadLetterReason.INVALID_NUMBER: "`NaN`, `Infinity`, a number that overflows a double, "
    "or an integer outside 64 bits",
    DeadLetterReason.DUPLICATE_KEY: "the same key twice in one JSON object",
    DeadLetterReason.NOT_OBJECT: "JSON that is not an object (`[1, 2]`)",
    DeadLetterReason.MISSING_FIELD: "a required field is absent",
    DeadLetterReason.WRONG_TYPE: "a field of the wrong type (`\"rating\": \"ten\"`)",
    DeadLetterReason.INVALID_VALUE: "a field out of its range or pattern (rating 11, a "
    "timestamp without a timezone or outside 1970-2199, an integer beyond its column)",
    DeadLetterReason.EMPTY_TEXT: "`review_text` empty or whitespace only",
    DeadLetterReason.TEXT_TOO_LONG: "`review_text` over 20,000 characters",
    DeadLetterReason.UNKNOWN_SCHEMA_VERSION: "`schema_version` this consumer does not support",
    DeadLetterReason.KEY_MISMATCH: "the Kafka key is missing or differs from `review_id`",
    DeadLetterReason.INFERENCE_ERROR: "the model failed on this review alone (worker)",
    DeadLetterReason.DB_REJECTED: "PostgreSQL refused this row (sink)",
    DeadLetterReason.UNREADABLE_DEAD_LETTER: "a message on the dead-letter topic that is not a "
    "dead letter; stored as-is, never re-published (sink)",
    DeadLetterReason.TRUNCATED_LINE: "the input file's last line ends mid-record (producer)",
    DeadLetterReason.TRUNCATED_FILE: "a gzip stream or JSON array cut short (producer)",
    DeadLetterReason.INTERNAL_ERROR: "the message made the service's code raise: a bug; "
    "`error` has the exception type and message (replay it after the fix)",
}

def reasons_table() -> str:
    """The Markdown table of every reason code (README, `make docs`; a test checks it)."""
    rows = ["| reason | meaning |", "|---|---|"]
    rows += [f"| `{reason.value}` | {REASONS[reason]} |" for reason in DeadLetterReason]
    return "\n".join(rows)


# Kafka's default message.max.bytes is 1,000,000: stay under it with room to spare.
DEFAULT_MAX_DEAD_LETTER_BYTES = 900_000
MAX_ERROR_CHARS = 4_000
# Keys are review ids in this project; a longer one is cut (the original is in its topic).
MAX_KEY_BYTES = 4_096
# Room left in a dead letter for everything but the value (JSON framing, error text, key).
_ENVELOPE_BYTES = 4_096 + MAX_ERROR_CHARS * 6

Encoding = Literal["utf-8", "base64"]


def storable(text: str, limit: int | None = None) -> str:
    """`text` made safe for UTF-8 and PostgreSQL: NUL and lone surrogates escaped, capped."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def as_text(raw: bytes) -> tuple[str, Encoding]:
    """Original bytes as UTF-8 text when they are NUL-free UTF-8, else base64."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        return base64.b64encode(raw).decode("ascii"), "base64"
    return text, "utf-8"


def _cut(raw: bytes, encoding: Encoding, max_value_bytes: int) -> bytes:
    """The longest prefix of `raw` whose text form is at most `max_value_bytes` bytes."""
    if encoding == "base64":
        return raw[: max_value_bytes // 4 * 3]
    # Cut the UTF-8 at a character boundary.
    return raw[:max_value_bytes].decode("utf-8", errors="ignore").encode("utf-8")


def explain(error: BaseException | str) -> tuple[str, str]:
    """(reason, error text) for a rejection: a ContractError's own, else internal_error."""
    if isinstance(error, ContractError):
        return error.reason, str(error.args[0])
    if isinstance(error, BaseException):
        return DeadLetterReason.INTERNAL_ERROR.value, f"{type(error).__name__}: {error}"
    return DeadLetterReason.INTERNAL_ERROR.value, error


def build_dead_letter(
    *,
    service: str,
    error: BaseException | str,
    value: bytes | None,
    key: bytes | None = None,
    reason: str | None = None,
    source_topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    max_value_bytes: int | None = None,
    max_bytes: int = DEFAULT_MAX_DEAD_LETTER_BYTES,
) -> tuple[DeadLetter, bytes]:
    """The dead letter for a rejected message, and its encoded bytes (at most `max_bytes`).

    `error` is the ContractError (its reason is used), any other exception (reason
    ``internal_error``, type and message in `error`) or a text with `reason`. The
    value is cut to `max_value_bytes` of text and, if the whole letter is still
    too large (JSON escapes control characters up to 6x), shrunk until it fits;
    the error then says ``value truncated from N to M bytes``.
    """
    code, detail = explain(error)
    code = str(reason or code)
    detail = storable(detail, MAX_ERROR_CHARS)
    original = value or b""
    text, encoding = as_text(original)
    if key is not None and len(key) > MAX_KEY_BYTES:
        detail += f" [key truncated from {len(key)} to {MAX_KEY_BYTES} bytes]"
        key = key[:MAX_KEY_BYTES]
    key_text, key_encoding = (None, "utf-8") if key is None else as_text(key)
    # Kafka coordinates are never negative; anything else is not a coordinate.
    partition = partition if partition is not None and 0 <= partition <= INT4_MAX else None
    offset = offset if offset is not None and 0 <= offset <= INT8_MAX else None
    keep = len(original)
    if max_value_bytes is not None and len(text.encode("utf-8")) > max_value_bytes:
        keep = len(_cut(original, encoding, max_value_bytes))
    else:
        max_value_bytes = None
    while True:
        cut = original[:keep]
        if keep < len(original):
            text, encoding = as_text(cut)
            note = (f"{detail} [value truncated from {len(original)} to {keep} bytes; the "
                    f"original is in {source_topic} partition {partition} offset {offset}]")
        else:
            note = detail
        letter = DeadLetter(
            service=storable(service, 100),
            reason=storable(code, 100),
            error=note,
            source_topic=None if source_topic is None else storable(source_topic, 255),
            partition=partition,
            offset=offset,
            key=key_text,
            key_encoding=key_encoding,
            value=text,
            value_encoding=encoding,
            failed_at=utc_now(),
        )
        encoded = encode(letter)
        if len(encoded) <= max_bytes or keep == 0:
            return letter, encoded
        # Shrink rather than predict the growth of escaping.
        keep = min(int(keep * 0.75), max(0, max_bytes - _ENVELOPE_BYTES))
        if encoding == "utf-8":
            keep = len(_cut(original, "utf-8", keep))


__all__ = [
    "DEFAULT_MAX_DEAD_LETTER_BYTES",
    "REASONS",
    "DeadLetterReason",
    "as_text",
    "build_dead_letter",
    "explain",
    "reasons_table",
    "storable",
]
