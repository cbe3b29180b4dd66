"""Reading reviews in the IMDB Spoiler Dataset layout and the prepared splits."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from training.exceptions import DataError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("review_text", "is_spoiler")
SPLITS = ("train", "validation", "test")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        head = fh.read(1)
        fh.seek(0)
        if head == "[":  # a JSON array (some exports of the dataset)
            yield from json.load(fh)
            return
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno} is not valid JSON ({exc.msg}); the input must be JSON "
                    "lines in the IMDB Spoiler Dataset layout, one review per line"
                ) from exc


def read_reviews(path: Path, max_rows: int = 0) -> list[dict[str, Any]]:
    """Reviews from a JSON-lines (or JSON array) file, columns checked."""
    if not path.is_file():
        raise DataError(f"input file {path} does not exist: run `dvc repro generate` or place "
                        "the dataset's IMDB_reviews.json under data/raw/")
    rows = []
    for row in _rows(path):
        rows.append(row)
        if max_rows and len(rows) >= max_rows:
            break
    check_columns(rows, str(path))
    return rows


def check_columns(rows: Iterable[dict[str, Any]], source: str,
                  required: tuple[str, ...] = REQUIRED_COLUMNS) -> None:
    rows = list(rows)
    if not rows:
        raise DataError(f"{source} holds no reviews: generate or download data first")
    missing = sorted({c for r in rows for c in required if c not in r})
    if missing:
        raise DataError(
            f"{source} lacks required column(s) {missing} (found "
            f"{sorted(rows[0])}): reviews need the IMDB Spoiler Dataset layout "
            "(review_text, is_spoiler, and review_summary, movie_id, rating where available)"
        )


def as_label(value: Any, where: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return int(value.strip().lower() in ("true", "1"))
    if isinstance(value, int) and value in (0, 1):
        return value
    raise DataError(f"{where}: is_spoiler must be true/false, got {value!r}; fix the input file")


def as_rating(value: Any) -> int | None:
    """The dataset stores ratings as strings ("10"); missing or odd values become None."""
    try:
        rating = int(value)
    except (TypeError, ValueError):
        return None
    return rating if 1 <= rating <= 10 else None


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_split(prepared: Path, split: str) -> list[dict[str, Any]]:
    path = prepared / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path} is missing: run the prepare stage first (`dvc repro prepare`)")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_splits(prepared: Path) -> dict[str, list[dict[str, Any]]]:
    return {s: read_split(prepared, s) for s in SPLITS}
