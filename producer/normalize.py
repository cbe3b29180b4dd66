"""Dataset record → `ReviewPublished`: smooth the dataset's quirks, then validate.

Quirks accepted (the IMDB Spoiler Dataset and its re-exports are not uniform):
`rating` as a string ("10"), an integral float (10.0), "" or null (no rating);
`is_spoiler` as "True"/"false"/"1"/"0" or 0/1; `review_summary` missing or null
(empty). Anything else wrong is the contract's business: validation goes
through `spoiler_common.contracts.validate`, the project's only validator, and
its reason codes (missing_field, wrong_type, empty_text, ...) are the skip reasons.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from spoiler_common.contracts import ReviewPublished, validate
from spoiler_common.exceptions import ContractError

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_TEXT_FIELDS = ("review_date", "movie_id", "user_id", "review_text", "review_summary")


def derive_review_id(data: dict[str, Any]) -> str:
    """A stable id for a record that has none.

    ``"r"`` + the first 20 hex digits of SHA-1 over movie_id, user_id,
    review_date and review_text joined by the unit separator (U+001F): the same
    review gets the same key in every run, on every machine.
    """
    get = data.get
    joined = f"{get('movie_id', '')}\x1f{get('user_id', '')}\x1f{get('review_date', '')}" \
        f"\x1f{get('review_text', '')}"
    digest = hashlib.sha1(joined.encode("utf-8", "surrogatepass"))
    return "r" + digest.hexdigest()[:20]


def _rating(value: Any) -> Any:
    if value is None or type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isdigit():
            return int(text)
        raise ContractError("wrong_type", f"field 'rating' expected integer, got {value!r}",
                            field="rating", expected="integer 1-10", got=repr(value))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # the contract says what is wrong with it


def label_of(value: Any) -> bool | None:
    """The record's `is_spoiler`, quirks smoothed; None when absent."""
    if value is None or type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ContractError("wrong_type", f"field 'is_spoiler' expected boolean, got {value!r}",
                        field="is_spoiler", expected="boolean", got=repr(value))


def to_review(
    data: dict[str, Any], produced_at: datetime, *, include_label: bool = False,
    id_suffix: str = "", check_nul: bool = True,
) -> tuple[ReviewPublished, bool | None]:
    """Validate one dataset record; return the contract message and its label.

    `check_nul=False` skips the NUL scan when the caller knows there is none (the
    reader checks the raw line once, which is cheaper). Raises ContractError (with
    a stable `reason`) for a record that cannot be sent.
    """
    label = label_of(data.get("is_spoiler"))
    if check_nul:
        for key in _TEXT_FIELDS:
            value = data.get(key)
            # PostgreSQL text cannot store NUL: refuse it here, as the contract's decode does.
            if isinstance(value, str) and "\x00" in value:
                raise ContractError("nul_byte", f"field '{key}' contains a NUL character",
                                    field=key, expected="text without NUL", got="NUL")
    review_id = data.get("review_id")
    if not isinstance(review_id, str) or not review_id:
        review_id = derive_review_id(data)
    summary = data.get("review_summary")
    fields = {
        "schema_version": 1,
        "review_id": review_id + id_suffix,
        "produced_at": produced_at,
        "review_date": data.get("review_date"),
        "movie_id": data.get("movie_id"),
        "user_id": data.get("user_id"),
        "review_text": data.get("review_text"),
        "review_summary": "" if summary is None else summary,
        "rating": _rating(data.get("rating")),
        "is_spoiler": label if include_label else None,
    }
    # Absent keys stay absent, so the contract reports them as missing_field.
    for key in ("review_date", "movie_id", "user_id", "review_text"):
        if key not in data:
            del fields[key]
    return validate(fields, ReviewPublished), label
