"""Bad input never crashes the sink: each bad message becomes one dead letter with its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import Consumer

from spoiler_common.contracts import MAX_TEXT_CHARS, DeadLetter, decode, encode
from spoiler_common.kafka import consumer

pytestmark = pytest.mark.integration


def _review_json(base: Any, rid: str, **fields: Any) -> dict[str, Any]:
    return {**json.loads(encode(base.model_copy(update={"review_id": rid}))), **fields}


def _dead_letter_topic(sink_kit: Any, expected: int) -> list[DeadLetter]:
    cons: Consumer = consumer(sink_kit.kafka, f"{sink_kit.group_id}-dlq-reader", "dlq-reader")
    cons.subscribe([sink_kit.topic("dead_letters")])
    letters: list[DeadLetter] = []
    try:
        def more() -> bool:
            for msg in cons.consume(100, 1.0):
                if msg.error() is None and msg.key() != b"g":  # g: the garbage one
                    letters.append(decode(msg.value(), DeadLetter))
            return len(letters) >= expected - 1
        sink_kit.wait_for(more, 60, f"{expected} dead letters on the topic", every_s=0)
    finally:
        cons.close()
    return letters


def test_sink_bad_input_goes_to_dead_letters(sink_kit: Any) -> None:
    base = sink_kit.review("base", 1)
    one_mb = "spoiler " * (1_000_000 // 8)
    bad: list[tuple[str, bytes | None, bytes | None]] = [
        ("reviews", b"j1", b"{not json"),
        ("reviews", b"j2", b"[1, 2]"),
        ("reviews", b"m1", json.dumps({k: v for k, v in _review_json(base, "m1").items()
                                       if k != "movie_id"}).encode()),
        ("reviews", b"v9", json.dumps(_review_json(base, "v9", schema_version=9)).encode()),
        ("reviews", b"nul1", json.dumps(_review_json(base, "nul1")).encode().replace(
            b"Review 1", b"Review\x001")),
        ("reviews", b"nul2",
         json.dumps(_review_json(base, "nul2", review_text="a\u0000b")).encode()),
        ("reviews", b"big", json.dumps(_review_json(base, "big", review_text=one_mb)).encode()),
        ("reviews", b"tomb", None),
        ("reviews", b"utf", b'{"review_id": "\xff\xfe"}'),
        ("labels", b"l1", b'{"schema_version": 1, "review_id": "l1", "is_spoiler": "yes"}'),
        ("predictions", b"p1", json.dumps(
            {**json.loads(encode(sink_kit.prediction("p1"))), "spoiler_probability": 1.5}
        ).encode()),
        # PostgreSQL text cannot hold a lone surrogate: the contract refuses it (worker too).
        ("labels", b"sur", b'{"schema_version": 1, "review_id": "sur", "is_spoiler": true, '
                           b'"labelled_at": "2024-05-01T12:00:00Z", "source": "x\\ud800y"}'),
    ]
    garbage_dead_letter = ("dead_letters", b"g", b"\x00 not a dead letter")
    good = sink_kit.full_set(20)
    longest = sink_kit.review("longest", 2, review_text="w " * (MAX_TEXT_CHARS // 2))
    sink_kit.publish([*good[:30], *bad, garbage_dead_letter, longest, *good[30:]],
                     **{"message.max.bytes": 2_000_000})

    with sink_kit.running():
        # 12 sink dead letters + the garbage one, stored from the dead-letter topic.
        sink_kit.wait_counts({"reviews": 21, "predictions": 20, "labels": 20,
                              "dead_letters": len(bad) + 1})
    reasons = dict(sink_kit.query(
        "SELECT key, reason FROM dead_letters WHERE service = 'sink'"))
    assert reasons == {
        "j1": "invalid_json", "j2": "not_object", "m1": "missing_field",
        "v9": "unknown_schema_version", "nul1": "nul_byte", "nul2": "nul_byte",
        "big": "text_too_long", "tomb": "empty_message", "utf": "invalid_utf8",
        "l1": "wrong_type", "p1": "invalid_value", "sur": "unpaired_surrogate",
    }
    assert sink_kit.query(
        "SELECT service, reason, value_encoding FROM dead_letters WHERE service <> 'sink'"
    ) == [("unknown", "unreadable_dead_letter", "base64")]
    # NUL bytes: raw ones are kept as base64, escaped ones as the original text.
    assert dict(sink_kit.query("SELECT key, value_encoding FROM dead_letters "
                               "WHERE key IN ('nul1', 'nul2')")) == {"nul1": "base64",
                                                                     "nul2": "utf-8"}
    # 1 MB text: refused by the contract; the dead letter keeps the first 256 KiB.
    (big_len, big_error), = sink_kit.query(
        "SELECT length(value), error FROM dead_letters WHERE key = 'big'")
    assert big_len == 262_144 and "truncated" in big_error
    assert sink_kit.query("SELECT length(review_text) FROM reviews "
                          "WHERE review_id = 'longest'") == [(MAX_TEXT_CHARS,)]
    # Every sink dead letter also sits on the topic, with where it came from.
    letters = [d for d in _dead_letter_topic(sink_kit, len(bad) + 1) if d.service == "sink"]
    assert len(letters) == len(bad)
    assert all(d.source_topic and d.offset is not None for d in letters)
