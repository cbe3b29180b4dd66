"""A file seeded with every kind of bad record: the right ones skipped, for the right reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producer.replay import ReplayOptions, replay
from producer.settings import ProducerSettings
from producer.sources import file_passes
from spoiler_common.contracts import ReviewPublished, decode
from spoiler_common.settings import KafkaSettings
from spoiler_common.topics import TopicSpec

from .conftest import read_all, topic_count

pytestmark = pytest.mark.integration


def _good(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "review_date": "3 February 2017", "movie_id": "tt0000001", "user_id": "ur1",
        "is_spoiler": False, "review_text": "A fine film about a lighthouse.", "rating": 8,
        "review_summary": "Fine",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not ...}


def _line(record: object) -> bytes:
    return json.dumps(record).encode() + b"\n"


# (line bytes, expected skip reason or None when it must be sent)
CASES: list[tuple[bytes, str | None]] = [
    (b"\xef\xbb\xbf" + _line(_good(user_id="ur-bom")), None),
    (_line(_good(user_id="ur2")), None),
    (b'{"review_date": "1 May 2017", "movie_id": \n', "invalid_json"),
    (_line(_good(review_text=123)), "wrong_type"),
    (_line(_good(movie_id=...)), "missing_field"),
    (_line(_good(review_text="   ")), "empty_text"),
    (b'{"review_date": "1 May 2017", "movie_id": "tt1", "user_id": "ur3", '
     b'"review_text": "caf\xe9 au lait"}\n', "invalid_utf8"),
    (_line(_good(rating="abc")), "wrong_type"),
    (_line(_good(rating=11)), "invalid_value"),
    (_line([1, 2, 3]), "not_object"),
    (_line(_good(user_id="ur-quirks", rating="7", is_spoiler="True", review_summary=None)), None),
    (b"\n", None),  # blank lines are not records
    (_line(_good(review_text="nul \u0000 here")), "nul_byte"),
    (_line(_good(is_spoiler="maybe")), "wrong_type"),
    (b'{"review_date": "3 Feb', "truncated_line"),
]


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(raw for raw, _ in CASES))
    return path


def test_every_bad_record_is_skipped_with_its_line_and_reason(
    bad_file: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    summary = replay(file_passes(bad_file), kafka_settings, producer_settings,
                     ReplayOptions(progress=False))
    expected = [(i + 1, reason) for i, (_, reason) in enumerate(CASES) if reason]
    assert [(b.line, b.reason) for b in summary.bad_records] == expected
    assert sum(summary.skipped.values()) == len(expected)
    assert summary.sent == 3 and summary.failed == 0
    assert topic_count(kafka_settings, topics["reviews"].name) == 3
    landed = {decode(m.value, ReviewPublished).user_id: decode(m.value, ReviewPublished)
              for m in read_all(kafka_settings, topics["reviews"].name, 3)}
    assert set(landed) == {"ur-bom", "ur2", "ur-quirks"}
    quirks = landed["ur-quirks"]
    assert (quirks.rating, quirks.review_summary) == (7, "")
    assert summary.labels_sent == 3
    text = summary.render()
    assert "line 3: invalid_json" in text and "line 15: truncated_line" in text


def test_strict_stops_at_the_first_bad_record(
    bad_file: Path, kafka_settings: KafkaSettings, topics: dict[str, TopicSpec],
    producer_settings: ProducerSettings,
) -> None:
    summary = replay(file_passes(bad_file), kafka_settings, producer_settings,
                     ReplayOptions(strict=True, progress=False))
    assert summary.stopped_by == "strict" and not summary.ok
    assert [(b.line, b.reason) for b in summary.bad_records] == [(3, "invalid_json")]
    assert summary.sent == 2
    assert topic_count(kafka_settings, topics["reviews"].name) == 2
