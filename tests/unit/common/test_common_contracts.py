"""Contract validation: valid examples pass; each invalid one fails with the right reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spoiler_common.contracts import (
    MAX_TEXT_CHARS,
    DeadLetter,
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    decode,
    encode,
)
from spoiler_common.dead_letters import build_dead_letter
from spoiler_common.exceptions import ContractError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def review(**overrides: object) -> dict:
    base = {
        "schema_version": 1,
        "review_id": "r-1",
        "produced_at": "2026-01-02T03:04:05Z",
        "review_date": "3 February 2017",
        "movie_id": "tt0111161",
        "user_id": "ur1",
        "review_text": "A slow, patient film.",
        "review_summary": "Patient",
        "rating": 9,
    }
    base.update(overrides)
    return base


def as_bytes(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_valid_review_round_trips_byte_identically() -> None:
    msg = decode(as_bytes(review()), ReviewPublished)
    assert msg.review_id == "r-1" and msg.rating == 9 and msg.is_spoiler is None
    assert decode(encode(msg), ReviewPublished) == msg
    assert encode(decode(encode(msg), ReviewPublished)) == encode(msg)


def test_every_contract_round_trips() -> None:
    messages = [
        SpoilerPredicted(review_id="r", spoiler_probability=0.7, is_spoiler=True, threshold=0.5,
                         model_name="m", model_version="1", produced_at=NOW, predicted_at=NOW,
                         inference_ms=1.0, queue_ms=2.0, end_to_end_ms=3.0),
        LabelArrived(review_id="r", is_spoiler=False, labelled_at=NOW),
        build_dead_letter(value=b"\xff\xfe", error="bad", service="test",
                          reason="invalid_utf8")[0],
    ]
    for msg in messages:
        assert decode(encode(msg), type(msg)) == msg


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"{not json", "invalid_json", None),
        (b"[1, 2]", "not_object", None),
        (b"\xff\xfe{}", "invalid_utf8", None),
        (as_bytes(review(review_text="a\u0000b")), "nul_byte", "review_text"),
        (b'{"review_text": "a\x00b"}', "nul_byte", None),
        (as_bytes({k: v for k, v in review().items() if k != "movie_id"}), "missing_field",
         "movie_id"),
        (as_bytes({k: v for k, v in review().items() if k != "schema_version"}),
         "missing_field", "schema_version"),
        (as_bytes(review(rating="9")), "wrong_type", "rating"),
        (as_bytes(review(review_text=17)), "wrong_type", "review_text"),
        (as_bytes(review(review_text="")), "empty_text", "review_text"),
        (as_bytes(review(review_text=" \n\t ")), "empty_text", "review_text"),
        (as_bytes(review(review_text="x" * (MAX_TEXT_CHARS + 1))), "text_too_long", "review_text"),
        (as_bytes(review(schema_version=2)), "unknown_schema_version", "schema_version"),
        (as_bytes(review(schema_version="1")), "unknown_schema_version", "schema_version"),
        (as_bytes(review(rating=11)), "invalid_value", "rating"),
        (as_bytes(review(review_id="has space")), "invalid_value", "review_id"),
        (as_bytes(review(produced_at="yesterday")), "wrong_type", "produced_at"),
        (None, "empty_message", None),
    ],
)
def test_invalid_review_fails_with_reason(
    raw: bytes | None, reason: str, field: str | None
) -> None:
    with pytest.raises(ContractError) as info:
        decode(raw, ReviewPublished)
    assert info.value.reason == reason
    assert info.value.field == field
    assert "Traceback" not in str(info.value)


def test_error_message_names_field_expected_and_got() -> None:
    with pytest.raises(ContractError) as info:
        decode(as_bytes(review(rating="9")), ReviewPublished)
    assert str(info.value) == "wrong_type: field 'rating' expected integer, got \"9\""


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert decode(as_bytes(review(new_field=1)), ReviewPublished).review_id == "r-1"


def test_dead_letter_keeps_original_bytes() -> None:
    for raw in (b"plain text", b"\xff\x00\x01", "caf\u00e9".encode(), b"a\x00b"):
        dl, _ = build_dead_letter(value=raw, error="x", service="t", key=raw,
                                  source_topic="s", partition=1, offset=2)
        back = decode(encode(dl), DeadLetter)
        assert back.original_value() == raw and back.original_key() == raw


@given(st.text(min_size=1, max_size=300).filter(lambda s: s.strip() and "\x00" not in s))
def test_any_nonblank_text_is_accepted_and_preserved(text: str) -> None:
    assert decode(as_bytes(review(review_text=text)), ReviewPublished).review_text == text


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_contract_error(raw: bytes) -> None:
    try:
        decode(raw, ReviewPublished)
    except ContractError as exc:
        assert exc.reason
