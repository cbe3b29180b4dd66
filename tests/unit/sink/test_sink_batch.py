"""Batch preparation: validation, dead letters, de-duplication, offsets (no I/O)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from sink.batch import UNREADABLE_DEAD_LETTER, prepare, reject
from sink.tables import DEAD_LETTERS, LABELS, PREDICTIONS, REVIEWS
from spoiler_common.contracts import (
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    encode,
)
from spoiler_common.dead_letters import build_dead_letter
from spoiler_common.topics import TopicRole

pytestmark = pytest.mark.unit

T = datetime(2024, 5, 1, tzinfo=UTC)
ROLES: dict[str, TopicRole] = {
    "r": "reviews", "p": "predictions", "l": "labels", "d": "dead_letters"}


@dataclass
class Msg:
    t: str
    p: int
    o: int
    v: bytes | None
    # Keyed by review_id unless a test says otherwise (the shared key rule).
    k: bytes | str | None = "auto"

    def topic(self) -> str:
        return self.t

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o

    def key(self) -> bytes | None:
        if self.k == "auto":
            try:
                return str(json.loads(self.v or b"")["review_id"]).encode()
            except (ValueError, KeyError, TypeError):
                return None
        assert not isinstance(self.k, str)
        return self.k

    def value(self) -> bytes | None:
        return self.v


def review(rid: str, **kw: object) -> bytes:
    fields = {"review_id": rid, "produced_at": T, "review_date": "1 May 2024", "movie_id": "tt1",
              "user_id": "u1", "review_text": "one two  three", "rating": 7, **kw}
    return encode(ReviewPublished(**fields))  # type: ignore[arg-type]


def prediction(rid: str, version: str = "v1", p: float = 0.7) -> bytes:
    return encode(SpoilerPredicted(
        review_id=rid, spoiler_probability=p, is_spoiler=p >= 0.5, threshold=0.5,
        model_name="m", model_version=version, produced_at=T, predicted_at=T, inference_ms=1.0,
        queue_ms=1.0, end_to_end_ms=2.0))


def label(rid: str, spoiler: bool = True) -> bytes:
    return encode(LabelArrived(review_id=rid, is_spoiler=spoiler, labelled_at=T))


def test_sink_prepare_converts_each_contract_to_its_row() -> None:
    batch = prepare([Msg("r", 0, 5, review("a")), Msg("p", 1, 9, prediction("a")),
                     Msg("l", 2, 0, label("a"))], ROLES)
    (r,), (p,), (lab,) = (batch.tables[t].rows for t in ("reviews", "predictions", "labels"))
    assert dict(zip(REVIEWS.columns, r, strict=True))["text_words"] == 3
    assert dict(zip(PREDICTIONS.columns, p, strict=True))["model_version"] == "v1"
    assert dict(zip(LABELS.columns, lab, strict=True)) == {
        "review_id": "a", "is_spoiler": True, "labelled_at": T, "source": "dataset"}
    assert batch.offsets == {("r", 0): 6, ("p", 1): 10, ("l", 2): 1}
    assert batch.messages == 3 and batch.row_count == 3 and not batch.rejected
    assert batch.per_topic == {"r": 1, "p": 1, "l": 1}


def test_sink_prepare_later_offset_wins_and_keys_are_sorted() -> None:
    batch = prepare([
        Msg("l", 0, 1, label("b", spoiler=False)),
        Msg("l", 0, 2, label("a")),
        Msg("l", 0, 3, label("b", spoiler=True)),
        Msg("p", 0, 1, prediction("a", "v1", 0.1)),
        Msg("p", 0, 2, prediction("a", "v2", 0.2)),
        Msg("p", 0, 3, prediction("a", "v1", 0.9)),
    ], ROLES)
    assert [(r[0], r[1]) for r in batch.tables["labels"].rows] == [("a", True), ("b", True)]
    assert [(r[1], r[3]) for r in batch.tables["predictions"].rows] == [("v1", 0.9), ("v2", 0.2)]
    assert [s.offset() for s in batch.tables["labels"].sources] == [2, 3]
    assert batch.offsets == {("l", 0): 4, ("p", 0): 4}


@pytest.mark.parametrize(("value", "reason"), [
    (b"{oops", "invalid_json"),
    (None, "empty_message"),
    (b"\xff\xfe", "invalid_utf8"),
    (b'{"schema_version": 1, "review_id": "x"}', "missing_field"),
    (review("n").replace(b"one", b"o\\u0000e"), "nul_byte"),
])
def test_sink_prepare_rejects_bad_messages_with_reason(value: bytes | None, reason: str) -> None:
    batch = prepare([Msg("r", 3, 7, value, b"key"), Msg("r", 3, 8, review("ok"), b"ok")], ROLES)
    assert [r.dead_letter.reason for r in batch.rejected] == [reason]
    letter = batch.rejected[0].dead_letter
    assert (letter.service, letter.source_topic, letter.partition, letter.offset) == (
        "sink", "r", 3, 7)
    assert batch.rejected[0].key == b"key"
    assert len(batch.tables["reviews"].rows) == 1
    # A rejected message is handled: its offset is committed with the batch.
    assert batch.offsets == {("r", 3): 9}


def test_sink_prepare_stores_dead_letters_with_their_coordinates() -> None:
    from spoiler_common.exceptions import ContractError

    letter, _ = build_dead_letter(value=b"{bad", error=ContractError("invalid_json", "nope"),
                                  service="producer", source_topic="x", partition=1, offset=2)
    batch = prepare([Msg("d", 2, 40, encode(letter), b"k"),
                     Msg("d", 2, 41, b"\x00garbage", b"g\x00")], ROLES)
    good, garbage = (dict(zip(DEAD_LETTERS.columns, r, strict=True))
                     for r in batch.tables["dead_letters"].rows)
    assert (good["dlq_partition"], good["dlq_offset"], good["service"], good["reason"]) == (
        2, 40, "producer", "invalid_json")
    assert (good["source_topic"], good["source_partition"], good["source_offset"]) == ("x", 1, 2)
    assert garbage["reason"] == UNREADABLE_DEAD_LETTER and garbage["service"] == "unknown"
    assert garbage["value_encoding"] == "base64"
    assert base64.b64decode(garbage["value"]) == b"\x00garbage"
    assert "\x00" not in garbage["key"]
    assert not batch.rejected  # never re-published: that would loop


def test_sink_reject_keeps_small_values_and_cuts_big_ones() -> None:
    small = reject(Msg("r", 0, 1, b"x" * 100, b"k"), "boom", 1024, reason="r").dead_letter
    assert small.original_value() == b"x" * 100 and "truncated" not in small.error
    text = json.dumps({"review_text": "é" * 5000}).encode()
    big = reject(Msg("r", 0, 1, text), "boom", 1025, reason="r").dead_letter
    assert len(big.value.encode()) <= 1025 and "truncated" in big.error
    assert text.startswith(big.original_value())
    cut = reject(Msg("r", 0, 1, b"\x00" * 5000), "boom", 1026, reason="r").dead_letter
    assert cut.value_encoding == "base64" and len(cut.value) % 4 == 0
    assert base64.b64decode(cut.value) == b"\x00" * (len(cut.value) // 4 * 3)


def test_sink_prepare_dead_letters_whatever_the_code_raises(monkeypatch) -> None:
    import sink.batch as batch_module

    def boom(_message: object) -> tuple[object, ...]:
        raise RuntimeError("a bug")

    monkeypatch.setitem(batch_module._ROLE_TABLE, "labels",
                        (LABELS, batch_module.LabelArrived, boom, (0,)))
    batch = prepare([Msg("l", 0, 1, label("a"), b"a"), Msg("r", 0, 2, review("b"), b"b")], ROLES)
    (rejected,) = batch.rejected
    assert rejected.dead_letter.reason == "internal_error"
    assert rejected.dead_letter.error == "RuntimeError: a bug"
    assert len(batch.tables["reviews"].rows) == 1 and batch.offsets == {("l", 0): 2, ("r", 0): 3}


def test_sink_prepare_applies_the_key_rule_like_the_worker() -> None:
    batch = prepare([Msg("r", 0, 1, review("a"), b"not-a"), Msg("l", 0, 2, label("b"), None)],
                    ROLES)
    assert [r.dead_letter.reason for r in batch.rejected] == ["key_mismatch", "key_mismatch"]


SHADOW_ROLES: dict[str, TopicRole] = {
    "r": "reviews", "p": "predictions", "s": "shadow_predictions", "l": "labels",
    "d": "dead_letters",
}


def shadow_prediction(rid: str, version: str, role: str = "challenger") -> bytes:
    data = json.loads(prediction(rid, version))
    data["role"] = role
    return json.dumps(data).encode()


def test_both_prediction_topics_fill_the_predictions_table_with_their_role() -> None:
    batch = prepare([Msg("p", 0, 1, prediction("a", "champ")),
                     Msg("s", 0, 1, shadow_prediction("a", "chall"))], SHADOW_ROLES)
    rows = [dict(zip(PREDICTIONS.columns, r, strict=True))
            for r in batch.tables["predictions"].rows]
    assert {(r["model_version"], r["role"]) for r in rows} == {("champ", "champion"),
                                                               ("chall", "challenger")}
    assert not batch.rejected


@pytest.mark.parametrize(("topic", "role"), [("p", "challenger"), ("s", "champion")])
def test_a_prediction_on_the_wrong_topic_for_its_role_is_a_dead_letter(
    topic: str, role: str
) -> None:
    batch = prepare([Msg(topic, 0, 3, shadow_prediction("a", "v", role))], SHADOW_ROLES)
    assert not batch.tables["predictions"].rows
    (rejected,) = batch.rejected
    assert rejected.dead_letter.reason == "invalid_value"
    assert "role" in rejected.dead_letter.error and batch.offsets == {(topic, 0): 4}
