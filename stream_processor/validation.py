"""What the worker accepts from the reviews topic.

Policy: anything that is not a valid ReviewPublished whose key equals its
review_id becomes a dead letter (with the shared contract's reason code, the
same one the sink gives the same bytes) and the stream moves on. A review_id
seen before is NOT an error: it is predicted again (the sink upserts on
(review_id, model_version), so the result is idempotent) and counted as a
duplicate.
"""

from __future__ import annotations

from collections import OrderedDict

from spoiler_common.contracts import ReviewPublished, decode_record

SERVICE = "stream_processor"


def parse_review(key: bytes | None, value: bytes | None) -> ReviewPublished:
    """Decode one message with the shared contract and its key rule; ContractError if bad."""
    return decode_record(key, value, ReviewPublished)


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


__all__ = ["SERVICE", "RecentIds", "parse_review"]
