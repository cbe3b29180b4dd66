"""The synthetic generator: layout, determinism, distributions, scenario switches."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from spoiler_common.contracts import MAX_TEXT_CHARS
from synth import SCENARIOS, generate, summarize
from synth.writer import write_jsonl

pytestmark = pytest.mark.unit

KEYS = ["review_date", "movie_id", "user_id", "is_spoiler", "review_text", "rating",
        "review_summary"]
DATE = re.compile(
    r"^[1-9][0-9]? (January|February|March|April|May|June|July|August|September|October"
    r"|November|December) (19|20)[0-9]{2}$")


def test_records_have_the_dataset_layout() -> None:
    for record in generate(300, seed=3):
        assert list(record) == KEYS
        assert DATE.match(record["review_date"]), record["review_date"]
        assert re.fullmatch(r"tt[0-9]{7}", record["movie_id"])
        assert re.fullmatch(r"ur[0-9]+", record["user_id"])
        assert isinstance(record["is_spoiler"], bool)
        assert type(record["rating"]) is int and 1 <= record["rating"] <= 10
        assert record["review_text"].strip() and record["review_summary"].strip()
        assert "{" not in record["review_text"] and "{" not in record["review_summary"]


def test_same_seed_same_records_other_seed_other_records() -> None:
    a = [json.dumps(r) for r in generate(200, seed=11)]
    b = [json.dumps(r) for r in generate(200, seed=11)]
    c = [json.dumps(r) for r in generate(200, seed=12)]
    assert a == b
    assert a != c


def test_start_index_resumes_the_same_stream() -> None:
    whole = list(generate(50, seed=5, scenario="length", drift_at=20))
    tail = list(generate(30, seed=5, scenario="length", drift_at=20, start_index=20))
    assert whole[20:] == tail


def test_records_before_drift_at_are_the_undrifted_ones() -> None:
    plain = list(generate(100, seed=9))
    drifted = list(generate(100, seed=9, scenario="vocabulary", drift_at=60))
    assert drifted[:60] == plain[:60]
    assert drifted[60:] != plain[60:]


def test_baseline_distributions_look_like_imdb() -> None:
    stats = summarize(generate(4000, seed=1))
    assert 0.21 < stats.spoiler_rate < 0.29
    assert 130 <= stats.median_words <= 200
    assert 170 < stats.mean_words < 260
    assert 7.4 < stats.rating_mean < 8.4
    assert stats.non_latin_share == 0.0


@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("spoiler_rate", lambda base, d: d.spoiler_rate > base.spoiler_rate + 0.25),
        ("length", lambda base, d: d.mean_words > 2.5 * base.mean_words),
        ("length_short", lambda base, d: d.mean_words < base.mean_words / 2.5),
        ("vocabulary", lambda base, d: d.non_latin_share > 0.2),
        ("rating", lambda base, d: d.rating_mean < base.rating_mean - 3),
        ("label_noise", lambda base, d: d.spoiler_rate > base.spoiler_rate + 0.1),
    ],
)
def test_each_scenario_is_visible_in_the_statistics(scenario: str, check) -> None:  # type: ignore[no-untyped-def]
    base = summarize(generate(1500, seed=2))
    drifted = summarize(generate(1500, seed=2, scenario=scenario, drift_at=0))
    assert check(base, drifted), (scenario, base.as_dict(), drifted.as_dict())


def test_vocabulary_scenario_brings_words_never_seen_before() -> None:
    seen = {w for r in generate(3000, seed=4) for w in r["review_text"].split()}
    drifted = list(generate(300, seed=4, scenario="vocabulary"))
    new = [w for r in drifted for w in r["review_text"].split() if w not in seen]
    assert len(new) > 300 * 5


def test_every_scenario_stays_inside_the_contract_limits() -> None:
    for name in SCENARIOS:
        for record in generate(200, seed=6, scenario=name):
            assert len(record["review_text"]) <= MAX_TEXT_CHARS


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        next(generate(1, seed=1, scenario="nope"))


def test_written_files_are_byte_identical(tmp_path: Path) -> None:
    for name in ("a.jsonl.gz", "b.jsonl.gz", "c.jsonl"):
        write_jsonl(generate(100, seed=8), tmp_path / name)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    lines = gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()).decode("utf-8")
    assert lines == (tmp_path / "c.jsonl").read_text("utf-8")
    assert [json.loads(x) for x in lines.splitlines()] == list(generate(100, seed=8))
