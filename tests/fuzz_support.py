"""Fuzzing the message boundary: hostile bytes for every contract, and what "fits" means.

Used by the hypothesis property tests (tests/unit/common/test_common_fuzz.py), the
COPY round trip into real PostgreSQL and the end-to-end fuzz through the real
broker, worker and sink (tests/integration/test_fuzz_pipeline.py).
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from sink.tables import Row, Table
from spoiler_common.contracts import (
    INT4_MAX,
    INT8_MAX,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    DeadLetter,
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    encode,
)
from spoiler_common.topics import TopicRole

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ROLES: tuple[TopicRole, ...] = ("reviews", "predictions", "labels", "dead_letters")
MODELS: dict[str, type[Any]] = {
    "reviews": ReviewPublished, "predictions": SpoilerPredicted, "labels": LabelArrived,
    "dead_letters": DeadLetter,
}
INT_RANGES = {"int2": (-(2**15), 2**15 - 1), "int4": (-(2**31), INT4_MAX),
              "int8": (-(2**63), INT8_MAX)}


def valid_message(role: str, rid: str, i: int = 0) -> Any:
    """A valid contract message of `role` for review id `rid`."""
    at = T0 + timedelta(seconds=i)
    if role == "reviews":
        return ReviewPublished(review_id=rid, produced_at=at, review_date="1 May 2024",
                               movie_id=f"tt{i % 97}", user_id=f"ur{i % 13}",
                               review_text=f"Review {i}: the twist in act three was good.",
                               review_summary="ok", rating=i % 10 + 1)
    if role == "predictions":
        return SpoilerPredicted(review_id=rid, spoiler_probability=0.25, is_spoiler=False,
                                threshold=0.5, model_name="m", model_version="v1",
                                produced_at=at, predicted_at=at, inference_ms=1.0, queue_ms=2.0,
                                end_to_end_ms=3.0, input_tokens=10, unknown_tokens=0)
    if role == "labels":
        return LabelArrived(review_id=rid, is_spoiler=i % 2 == 0, labelled_at=at)
    return DeadLetter(service="producer", reason="invalid_json", error="bad", source_topic="x",
                      partition=0, offset=i, key=rid, value="{oops", failed_at=at)


# ---- what a stored row must satisfy -----------------------------------------------------

def row_problems(table: Table, row: Row) -> list[str]:
    """Why `row` would not be stored faithfully in `table` (empty: it fits).

    Binary COPY does not check integer ranges: an int4 column silently stores
    2**40 as 0. So the ranges are checked here, not left to PostgreSQL.
    """
    problems = []
    for column, kind, value in zip(table.columns, table.types, row, strict=True):
        if value is None:
            continue
        if kind in INT_RANGES:
            lo, hi = INT_RANGES[kind]
            if type(value) is not int or not lo <= value <= hi:
                problems.append(f"{column}={value!r} is not an {kind}")
        elif kind == "text":
            if not isinstance(value, str) or "\x00" in value:
                problems.append(f"{column} is not NUL-free text")
            else:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    problems.append(f"{column} is not UTF-8 encodable")
        elif kind == "float8":
            if not isinstance(value, float) or not math.isfinite(value):
                problems.append(f"{column}={value!r} is not a finite double")
        elif kind == "bool":
            if type(value) is not bool:
                problems.append(f"{column}={value!r} is not a boolean")
        elif kind == "timestamptz" and (
            not isinstance(value, datetime) or value.tzinfo is None
            or not MIN_TIMESTAMP <= value < MAX_TIMESTAMP
        ):
            problems.append(f"{column}={value!r} is not a plausible aware timestamp")
    return problems


# ---- hypothesis strategies --------------------------------------------------------------

# Every code point, lone surrogates and NUL included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
SPECIAL_NUMBERS = st.sampled_from([
    0, -1, 2**15, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308,
    float("nan"), float("inf"), float("-inf"), 1e-320,
])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), SPECIAL_NUMBERS,
                    ANY_TEXT)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)), max_leaves=12)
ODD_STRINGS = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\ufeff", "2024-05-01T12:00:00",
    "2024-05-01T12:00:00Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "1969-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "yesterday", "r" * 200, "x" * 20_001,
    "\u202e", "\U0001f600",
])


def _dump(data: Any, ascii_only: bool) -> str:
    return json.dumps(data, ensure_ascii=ascii_only, allow_nan=True)


@st.composite
def hostile_value(draw: st.DrawFn, role: str) -> bytes:
    """A value for `role`'s topic: arbitrary bytes, arbitrary JSON, or a valid message bent."""
    base = json.loads(encode(valid_message(role, "r1")))
    kind = draw(st.sampled_from(["bytes", "json", "field", "drop", "extra", "nest", "dup",
                                 "encoding", "bom", "valid"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return _dump(draw(ANY_JSON), draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == "field":
        field = draw(st.sampled_from(sorted(base)))
        base[field] = draw(st.one_of(ANY_JSON, ODD_STRINGS, SPECIAL_NUMBERS))
    elif kind == "drop":
        base.pop(draw(st.sampled_from(sorted(base))))
    elif kind == "extra":
        base[draw(ANY_TEXT)] = draw(ANY_JSON)
    elif kind == "nest":
        depth = draw(st.integers(1, 3000))
        base["extra"] = json.loads("[" * min(depth, 900) + "]" * min(depth, 900))
        text = _dump(base, True)
        if depth > 900:  # deeper than json.dumps can write: build the text by hand
            text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
        return text.encode()
    elif kind == "dup":
        field = draw(st.sampled_from(sorted(base)))
        text = _dump(base, True)
        return (text[:-1] + f", {json.dumps(field)}: {_dump(draw(SCALARS), True)}}}").encode(
            "utf-8", "surrogatepass")
    elif kind == "encoding":
        codec = draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252"]))
        base["review_text" if role == "reviews" else "review_id"] = "café déjà vu"
        return _dump(base, False).encode(codec, "replace")
    elif kind == "bom":
        return b"\xef\xbb\xbf" + _dump(base, True).encode()
    return _dump(base, draw(st.booleans())).encode("utf-8", "surrogatepass")


# ---- plain random mutants for the end-to-end fuzz (deterministic per seed) --------------

_BAD_SCALARS: list[Any] = [None, True, 0, -1, 2**31, 2**63, 10**30, 1.5, "", " ", "\x00",
                           "\ud800", "nan", [], {}, [[[]]], "x" * 20_001, "2024-05-01T12:00:00",
                           "9999-12-31T23:59:59-14:00", "1969-01-01T00:00:00Z"]


def mutant(rng: random.Random, role: str, rid: str, i: int = 0
           ) -> tuple[bytes | None, bytes | None]:
    """One hostile (key, value) for `role`'s topic, keyed `rid` (sometimes not)."""
    base = json.loads(encode(valid_message(role, rid, i)))
    key: bytes | None = rid.encode()
    kind = rng.randrange(14)
    if kind == 0:
        return key, rng.randbytes(rng.randrange(1, 200))
    if kind == 1:
        return key, None
    if kind == 2:
        field = rng.choice(sorted(base))
        base[field] = rng.choice(_BAD_SCALARS)
    elif kind == 3:
        base.pop(rng.choice(sorted(base)))
    elif kind == 4:
        return key, (_dump(base, True)[:-1] + ', "deep": ' + "[" * 5000 + "]" * 5000 + "}"
                     ).encode()
    elif kind == 5:
        return key, _dump(base, True).replace("{", '{"x": 1' + "9" * 5000 + ", ", 1).encode()
    elif kind == 6:
        return key, (_dump(base, True)[:-1] + ', "schema_version": 1}').encode()
    elif kind == 7:
        return key, _dump(base, False).encode("utf-16")
    elif kind == 8:
        return key, b"\xef\xbb\xbf" + _dump(base, True).encode()
    elif kind == 9:
        return key, _dump(base, True).replace('": 1', '": NaN', 1).encode()
    elif kind == 10:
        if role == "dead_letters":
            base["partition"] = rng.choice([-1, 2**31, 2**63])
        else:
            key = rng.choice([None, b"other", b"\xff\xfe", rid.encode() + b"\x00"])
    elif kind == 11:
        base[rng.choice(["a\x00b", "\ud800", "k"])] = {"n": [rng.choice(_BAD_SCALARS)]}
    elif kind == 12:
        field = rng.choice(sorted(base))
        base[field] = {"nested": rng.choice(_BAD_SCALARS)}
    else:
        return key, _dump(base, True)[: rng.randrange(1, 40)].encode()
    return key, _dump(base, rng.random() < 0.5).encode("utf-8", "surrogatepass")


__all__ = ["MODELS", "ROLES", "hostile_value", "mutant", "row_problems", "valid_message"]
