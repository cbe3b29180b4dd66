"""Reading dataset files: JSON lines and arrays, gzip, BOM, broken bytes; shuffle, ids."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from producer.exceptions import InputFileError
from producer.normalize import derive_review_id, label_of, to_review
from producer.publisher import keep_label
from producer.reader import RawRecord, read_records
from producer.sources import file_passes, shuffled
from spoiler_common.contracts import utc_now
from spoiler_common.exceptions import ContractError

pytestmark = pytest.mark.unit

RECORDS = [{"review_date": "1 May 2017", "movie_id": f"tt{i:07d}", "user_id": f"ur{i}",
            "is_spoiler": i % 2 == 0, "review_text": f"text\nnumber {i} \u2028 é",
            "rating": "7", "review_summary": "s"} for i in range(25)]


def _good(path: Path) -> list[dict]:
    return [r.data for r in read_records(path) if r.data is not None]


@pytest.mark.parametrize("indent", [None, 2])
def test_json_array_is_streamed_element_by_element(tmp_path: Path, indent: int | None) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(RECORDS, indent=indent), "utf-8")
    assert _good(path) == RECORDS


def test_gzip_is_detected_by_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.data"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in RECORDS).encode()))
    assert _good(path) == RECORDS


def test_bom_is_accepted_in_both_formats(tmp_path: Path) -> None:
    lines, array = tmp_path / "l.jsonl", tmp_path / "a.json"
    lines.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS[0]).encode() + b"\n")
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS[:2]).encode())
    assert _good(lines) == RECORDS[:1]
    assert _good(array) == RECORDS[:2]


def test_array_with_bad_bytes_skips_only_that_element(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    body = ",\n".join(json.dumps(r) for r in RECORDS[:3]).encode()
    body = body.replace(b"number 1 ", b"number \xff1 ")
    path.write_bytes(b"[\n" + body + b"\n]")
    records = list(read_records(path))
    assert [r.reason for r in records] == [None, "invalid_utf8", None]
    assert [r.line for r in records] == [2, 3, 4]


def test_truncated_array_reports_and_keeps_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(RECORDS[:3])[:-40], "utf-8")
    records = list(read_records(path))
    assert [r.reason for r in records] == [None, None, "truncated_file"]


def test_cut_gzip_is_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in RECORDS * 40).encode())
    path.write_bytes(data[: len(data) // 2])
    records = list(read_records(path))
    assert records[-1].reason == "truncated_file"
    assert all(r.reason is None for r in records[:-2])


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        list(read_records(tmp_path / "nope.jsonl"))


def test_shuffle_is_a_deterministic_permutation() -> None:
    records = [RawRecord(i) for i in range(1000)]
    a = [r.line for r in shuffled(iter(records), seed=3, buffer=100)]
    b = [r.line for r in shuffled(iter(records), seed=3, buffer=100)]
    assert a == b and sorted(a) == list(range(1000)) and a != list(range(1000))


def test_start_at_skips_records(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), "utf-8")
    first = next(file_passes(path, start_at=20))
    assert [(r.data or {}).get("user_id") for r in first.records] == [
        f"ur{i}" for i in range(20, 25)]


def test_derived_review_id_is_stable_and_valid() -> None:
    rid = derive_review_id(RECORDS[0])
    assert rid == derive_review_id(dict(RECORDS[0]))
    assert rid != derive_review_id(RECORDS[1])
    assert rid.startswith("r") and len(rid) == 21
    review, label = to_review(RECORDS[0], utc_now())
    assert review.review_id == rid and review.rating == 7 and label is True
    assert to_review({**RECORDS[0], "review_id": "abc"}, utc_now())[0].review_id == "abc"


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), ("True", True), ("false", False), (0, False), (1, True), (None, None)])
def test_label_quirks(value: object, expected: bool | None) -> None:
    assert label_of(value) is expected


def test_bad_label_is_wrong_type() -> None:
    with pytest.raises(ContractError) as info:
        label_of("maybe")
    assert info.value.reason == "wrong_type"


def test_label_fraction_is_a_stable_hash_decision() -> None:
    ids = [f"r{i}" for i in range(10_000)]
    kept = [i for i in ids if keep_label(i, 0.3)]
    assert 2800 < len(kept) < 3200
    assert kept == [i for i in ids if keep_label(i, 0.3)]
    assert all(keep_label(i, 1.0) for i in ids[:10])
    assert not any(keep_label(i, 0.0) for i in ids[:100])


def test_hostile_lines_are_skipped_with_the_contract_reason(tmp_path: Path) -> None:
    good = json.dumps(RECORDS[0])
    lines = [
        good,
        '{"a": 1' + "0" * 5000 + "}",  # Python refuses > 4,300 digits with a ValueError
        "[" * 100_000 + "]" * 100_000,  # json would raise RecursionError
        '{"a": 1, "a": 2}',
        '{"a": NaN}',
        good,
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n")
    records = list(read_records(path))
    assert [r.reason for r in records] == [
        None, "invalid_number", "too_deeply_nested", "duplicate_key", "invalid_number", None]
    array = tmp_path / "hostile.json"
    array.write_text(f"[{good}, {{\"a\": 1{'0' * 5000}}}, {good}]")
    assert [r.reason for r in read_records(array)] == [None, "invalid_number"]
