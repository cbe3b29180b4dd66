"""Worker input policy: contract + key check, dead letters that always fit."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from spoiler_common.contracts import DeadLetter, ReviewPublished, decode, encode
from spoiler_common.dead_letters import build_dead_letter
from spoiler_common.exceptions import ContractError
from stream_processor.validation import SERVICE, RecentIds, parse_review

pytestmark = pytest.mark.unit


def review(**changes: object) -> dict[str, object]:
    base = ReviewPublished(
        review_id="r1", produced_at=datetime(2024, 1, 1, tzinfo=UTC), review_date="1 May 2020",
        movie_id="tt1", user_id="u1", review_text="A fine film.",
    ).model_dump(mode="json")
    base.update(changes)
    return base


def raw(data: object) -> bytes:
    return json.dumps(data).encode()


def test_valid_review_with_matching_key_is_accepted() -> None:
    assert parse_review(b"r1", raw(review())).review_id == "r1"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"r1", b"{oops", "invalid_json"),
        (b"r1", b"[1, 2]", "not_object"),
        (b"r1", raw({k: v for k, v in review().items() if k != "movie_id"}), "missing_field"),
        (b"r1", raw(review(rating="ten")), "wrong_type"),
        (b"r1", raw(review(review_text="")), "empty_text"),
        (b"r1", raw(review(review_text=" \n\t ")), "empty_text"),
        (b"r1", raw(review(review_text="x" * 20_001)), "text_too_long"),
        (b"r1", b'{"review_id": "r1", "x": "\xff\xfe"}', "invalid_utf8"),
        (b"r1", raw(review(review_text="a\u0000b")), "nul_byte"),
        (b"r1", raw(review(schema_version=2)), "unknown_schema_version"),
        (b"other", raw(review()), "key_mismatch"),
        (None, raw(review()), "key_mismatch"),
        (b"r1", None, "empty_message"),
    ],
)
def test_bad_input_gets_a_reason(key: bytes | None, value: bytes | None, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_review(key, value)
    assert info.value.reason == reason


def test_dead_letter_keeps_where_and_why() -> None:
    err = ContractError("invalid_json", "value is not JSON")
    letter, encoded = build_dead_letter(
        service=SERVICE, key=b"k", value=b"{oops", error=err, source_topic="t", partition=2,
        offset=7, max_bytes=100_000,
    )
    back = decode(encoded, DeadLetter)
    assert back == letter
    assert (back.reason, back.service, back.source_topic, back.partition, back.offset) == (
        "invalid_json", "stream_processor", "t", 2, 7)
    assert back.original_value() == b"{oops" and back.key == "k"


@pytest.mark.parametrize("filler", [b"x", b"\x01", b"\xff"])
def test_huge_value_is_truncated_to_fit(filler: bytes) -> None:
    value = filler * 1_000_000
    err = ContractError("text_too_long", "too long")
    letter, encoded = build_dead_letter(
        service=SERVICE, key=b"k", value=value, error=err, source_topic="t", partition=0,
        offset=1, max_bytes=200_000,
    )
    assert len(encoded) <= 200_000
    assert letter.reason == "text_too_long"
    assert "truncated from 1000000" in letter.error
    kept = letter.original_value()
    assert value.startswith(kept) and len(kept) > 10_000


def test_invalid_utf8_is_kept_as_base64() -> None:
    letter, _ = build_dead_letter(
        service=SERVICE, key=None, value=b"\xff\x00", error="bad", source_topic="t",
        partition=0, offset=0, max_bytes=100_000, reason="invalid_utf8",
    )
    assert letter.value_encoding == "base64"
    assert base64.b64decode(letter.value) == b"\xff\x00"
    assert letter.key is None


def test_recent_ids_counts_repeats_within_capacity() -> None:
    ids = RecentIds(capacity=2)
    assert [ids.seen(x) for x in ("a", "b", "a", "c", "b")] == [False, False, True, False, False]


def test_encode_round_trip_of_accepted_review() -> None:
    assert parse_review(b"r1", encode(ReviewPublished.model_validate(review()))).review_id == "r1"
