"""prediction.v2's `role`, and the v1 reader (every v1 prediction is a champion's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from spoiler_common.contracts import SpoilerPredicted, decode, encode, headers_for
from spoiler_common.exceptions import ContractError
from spoiler_tools.contracts_cli import schema_documents

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def fields(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema_version": 2, "review_id": "r-1", "role": "challenger",
        "spoiler_probability": 0.7, "is_spoiler": True, "threshold": 0.5, "model_name": "m",
        "model_version": "v2", "produced_at": NOW.isoformat(), "predicted_at": NOW.isoformat(),
        "inference_ms": 1.0, "queue_ms": 2.0, "end_to_end_ms": 3.0,
    }
    base.update(overrides)
    return base


def raw(**overrides: object) -> bytes:
    return json.dumps(fields(**overrides)).encode()


def test_writers_write_v2_with_a_role() -> None:
    p = SpoilerPredicted.model_validate({k: v for k, v in fields().items()
                                         if k not in ("schema_version", "role")})
    data = json.loads(encode(p))
    assert data["schema_version"] == 2 and data["role"] == "champion"
    assert dict(headers_for(p, "test"))["schema_version"] == b"2"


def test_v2_challenger_round_trips() -> None:
    p = decode(raw(), SpoilerPredicted)
    assert p.role == "challenger" and p.schema_version == 2
    assert decode(encode(p), SpoilerPredicted) == p


def test_v1_is_read_as_the_champion_whatever_it_says() -> None:
    v1 = {k: v for k, v in fields(schema_version=1).items() if k != "role"}
    p = decode(json.dumps(v1).encode(), SpoilerPredicted)
    assert p.role == "champion" and p.schema_version == 1
    # v1 had no roles: a stray `role` is an unknown field, ignored like any other.
    assert decode(raw(schema_version=1), SpoilerPredicted).role == "champion"
    # and it encodes to something every reader accepts the same way
    assert decode(encode(p), SpoilerPredicted) == p


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"role": "shadow"}, "invalid_value"),
    ({"role": None}, "invalid_value"),
    ({"schema_version": 3}, "unknown_schema_version"),
])
def test_bad_role_or_version_is_refused_with_a_reason(
    overrides: dict[str, object], reason: str
) -> None:
    with pytest.raises(ContractError) as err:
        decode(raw(**overrides), SpoilerPredicted)
    assert err.value.reason == reason


def test_each_version_has_its_schema() -> None:
    docs = schema_documents()
    v1, v2 = docs["prediction.v1.json"], docs["prediction.v2.json"]
    assert "role" not in v1["properties"] and v1["properties"]["schema_version"]["const"] == 1
    assert v2["properties"]["role"]["enum"] == ["champion", "challenger"]
    assert v2["properties"]["schema_version"]["const"] == 2
    assert docs["review.v1.json"]["properties"]["schema_version"]["const"] == 1
