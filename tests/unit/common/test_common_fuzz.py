"""Property tests of the one decoder: any bytes give a model or a ContractError, nothing else,
and an accepted message always encodes again and always fits its PostgreSQL table."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink.tables import (
    DEAD_LETTERS,
    LABELS,
    PREDICTIONS,
    REVIEWS,
    Table,
    dead_letter_row,
    label_row,
    prediction_row,
    review_row,
)
from spoiler_common.contracts import decode, decode_record, encode
from spoiler_common.dead_letters import DeadLetterReason, build_dead_letter
from spoiler_common.exceptions import ContractError
from tests.fuzz_support import MODELS, ROLES, hostile_value, row_problems

pytestmark = pytest.mark.unit

EXAMPLES = 400
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TABLES: dict[str, tuple[Table, Any]] = {
    "reviews": (REVIEWS, review_row), "predictions": (PREDICTIONS, prediction_row),
    "labels": (LABELS, label_row),
    "dead_letters": (DEAD_LETTERS, lambda m: dead_letter_row(m, 0, 0)),
}
KNOWN_REASONS = {r.value for r in DeadLetterReason}


def _check(role: str, raw: bytes | None, key: bytes | None = None) -> str:
    model = MODELS[role]
    try:
        message = decode(raw, model) if key is None else decode_record(key, raw, model)
    except ContractError as exc:
        assert exc.reason in KNOWN_REASONS, exc.reason
        assert exc.reason != DeadLetterReason.INTERNAL_ERROR, exc.__cause__
        str(exc).encode("utf-8")  # the error text itself is storable
        return exc.reason
    again = decode(encode(message), model)
    assert again == message and encode(again) == encode(message)
    table, to_row = TABLES[role]
    assert row_problems(table, to_row(message)) == []
    return "accepted"


@pytest.mark.parametrize("role", ROLES)
@FUZZ
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes(role: str, raw: bytes) -> None:
    _check(role, raw)


@pytest.mark.parametrize("role", ROLES)
@FUZZ
@given(data=st.data())
def test_hostile_json(role: str, data: st.DataObject) -> None:
    _check(role, data.draw(hostile_value(role)))


@pytest.mark.parametrize("role", ["reviews", "predictions", "labels"])
@FUZZ
@given(data=st.data(), key=st.one_of(st.none(), st.binary(max_size=20), st.just(b"r1")))
def test_hostile_json_with_any_key(role: str, data: st.DataObject, key: bytes | None) -> None:
    outcome = _check(role, data.draw(hostile_value(role)), key or b"")
    if outcome == "accepted":
        assert key == b"r1"


@FUZZ
@given(value=st.one_of(st.none(), st.binary(max_size=3000)), key=st.one_of(st.none(), st.binary()),
       error=st.one_of(st.text(st.characters(exclude_categories=())), st.builds(
           ValueError, st.text(st.characters(exclude_categories=())))),
       partition=st.integers(), offset=st.integers())
def test_every_dead_letter_encodes_fits_and_keeps_the_bytes(
    value: bytes | None, key: bytes | None, error: Any, partition: int, offset: int
) -> None:
    letter, encoded = build_dead_letter(service="fuzz", error=error, value=value, key=key,
                                        source_topic="t", partition=partition, offset=offset,
                                        max_bytes=20_000)
    assert len(encoded) <= 20_000
    back = decode(encoded, MODELS["dead_letters"])
    assert back == letter
    assert row_problems(DEAD_LETTERS, dead_letter_row(back, 0, 0)) == []
    assert (value or b"").startswith(back.original_value())
    if "truncated" not in back.error:
        assert back.original_value() == (value or b"") and back.original_key() == key
