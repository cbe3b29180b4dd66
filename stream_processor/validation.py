"""What the worker accepts from the reviews topic, and the dead letter for what it does not.

Policy: anything that is not a valid ReviewPublished whose key equals its
review_id becomes a dead letter (with the shared contract's reason code) and
the stream moves on. A review_id seen before is NOT an error: it is predicted
again (the sink upserts on (review_id, model_version), so the result is
idempotent) and counted as a duplicate.
"""

from __future__ import annotations

from collections import OrderedDict

from spoiler_common.contracts import DeadLetter, ReviewPublished, dead_letter_for, decode, encode
from spoiler_common.exceptions import ContractError

SERVICE = "stream_processor"
# Room left in a dead letter for everything but the value (JSON framing, error text, key).
_ENVELOPE_BYTES = 4_096


def parse_review(key: bytes | None, value: bytes | None) -> ReviewPublished:
    """Decode one message with the shared contract and check the key; ContractError if bad."""
    review = decode(value, ReviewPublished)
    if key is None:
        raise ContractError(
            "key_mismatch",
            f"message has no key; expected the review_id {review.review_id!r}",
            field="key",
            expected=review.review_id,
            got="null",
        )
    if key != review.review_id.encode("utf-8"):
        shown = key[:80].decode("utf-8", errors="replace")
        raise ContractError(
            "key_mismatch",
            f"key {shown!r} does not match review_id {review.review_id!r}",
            field="key",
            expected=review.review_id,
            got=shown,
        )
    return review


def build_dead_letter(
    key: bytes | None,
    value: bytes | None,
    error: ContractError | str,
    *,
    topic: str,
    partition: int,
    offset: int,
    max_bytes: int,
    reason: str | None = None,
) -> tuple[DeadLetter, bytes]:
    """The dead letter for a rejected message, and its encoded bytes.

    A value near Kafka's message size limit would not fit in a dead letter
    (base64 or JSON escaping grows it), so it is cut to fit and the error says
    so; where and why it failed, and its first part, are always kept.
    """
    letter = dead_letter_for(
        value, error, service=SERVICE, reason=reason, raw_key=key,
        source_topic=topic, partition=partition, offset=offset,
    )
    encoded = encode(letter)
    if len(encoded) <= max_bytes:
        return letter, encoded
    original = len(value or b"")
    detail = str(error.args[0]) if isinstance(error, ContractError) else error
    code = reason or (error.reason if isinstance(error, ContractError) else "error")
    # base64 grows the value by 4/3 and JSON escaping up to 6x for control
    # characters: shrink until it fits rather than predicting the growth.
    keep = max(0, min(original, max_bytes - _ENVELOPE_BYTES))
    while True:
        letter = dead_letter_for(
            (value or b"")[:keep],
            f"{detail} [value truncated from {original} to {keep} bytes for the dead letter]",
            service=SERVICE, reason=code, raw_key=key,
            source_topic=topic, partition=partition, offset=offset,
        )
        encoded = encode(letter)
        if len(encoded) <= max_bytes or keep == 0:
            return letter, encoded
        keep = int(keep * 0.75)


class RecentIds:
    """The last `capacity` review ids seen by this process, to count duplicates cheaply."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def seen(self, review_id: str) -> bool:
        """True if `review_id` was seen recently; remembers it either way."""
        if review_id in self._ids:
            self._ids.move_to_end(review_id)
            return True
        self._ids[review_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return False


__all__ = ["SERVICE", "RecentIds", "build_dead_letter", "parse_review"]
