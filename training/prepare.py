"""prepare: clean, deduplicate and split reviews into train/validation/test.

Model text = review_summary + " " + review_text. Texts are deduplicated on a
normalised form; texts whose copies disagree on the label are dropped (they
teach nothing and poison evaluation). Splits are stratified on the label, or
grouped by movie_id so no movie appears in two splits. The test split keeps
the natural spoiler rate: nothing is ever rebalanced here (the loss is
weighted instead, in train).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spoiler_common.model_runtime import model_text
from training.data import SPLITS, as_label, as_rating, read_reviews, write_jsonl
from training.exceptions import DataError
from training.params import PrepareParams

log = logging.getLogger(__name__)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The form duplicates are detected on: NFKC, lower case, single spaces."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


@dataclass(frozen=True)
class PrepareStats:
    rows_in: int
    empty_dropped: int
    duplicates_dropped: int
    conflicting_dropped: int
    mixed_in: int
    sizes: dict[str, int]
    spoiler_rates: dict[str, float]
    split_by: str
    data_hash: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def clean(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows with `text` and `label`, empty texts dropped, duplicates and conflicts removed."""
    by_text: dict[str, list[dict[str, Any]]] = {}
    empty = 0
    for i, row in enumerate(rows):
        text = model_text(row.get("review_summary"), row.get("review_text"))
        if not text.strip():
            empty += 1
            continue
        out = {
            "text": text,
            "label": as_label(row["is_spoiler"], f"row {i + 1}"),
            "review_text": row.get("review_text") or "",
            "review_summary": row.get("review_summary") or "",
            "movie_id": str(row.get("movie_id") or ""),
            "rating": as_rating(row.get("rating")),
        }
        by_text.setdefault(normalise(text), []).append(out)
    kept, duplicates, conflicting = [], 0, 0
    for copies in by_text.values():
        if len({c["label"] for c in copies}) > 1:
            conflicting += len(copies)
            continue
        duplicates += len(copies) - 1
        kept.append(copies[0])
    if not kept:
        raise DataError(
            f"no usable reviews: {empty} had empty text after cleanup and {conflicting} had "
            "conflicting labels; check the input file's review_text/review_summary columns"
        )
    return kept, {"empty_dropped": empty, "duplicates_dropped": duplicates,
                  "conflicting_dropped": conflicting}


def _require_both_classes(labels: np.ndarray, where: str) -> None:
    counts = Counter(labels.tolist())
    if len(counts) < 2:
        only = "spoilers" if 1 in counts else "non-spoilers"
        raise DataError(
            f"the {where} holds only {only} ({len(labels)} reviews): a classifier needs both "
            "classes; add reviews of the other class, or use larger split sizes"
        )


def _random_split(labels: np.ndarray, params: PrepareParams) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    try:
        rest, test = train_test_split(idx, test_size=params.test_size, stratify=labels,
                                      random_state=params.seed)
        val_share = params.validation_size / (1 - params.test_size)
        train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest],
                                      random_state=params.seed)
    except ValueError as exc:  # too few members of a class to stratify
        raise DataError(
            f"cannot split {len(labels)} reviews stratified ({exc}); each class needs at least "
            "a few reviews per split: add data or change validation_size/test_size"
        ) from exc
    return {"train": train, "validation": val, "test": test}


def _movie_split(labels: np.ndarray, movies: list[str],
                 params: PrepareParams) -> dict[str, np.ndarray]:
    """Whole movies per split; sizes hit the targets approximately (movies are lumpy)."""
    if any(not m for m in movies):
        raise DataError("split_by: movie needs a movie_id on every review; some are empty. "
                        "Use split_by: random or fill movie_id")
    rng = np.random.default_rng(params.seed)
    by_movie: dict[str, list[int]] = {}
    for i, m in enumerate(movies):
        by_movie.setdefault(m, []).append(i)
    names = sorted(by_movie)
    rng.shuffle(names)
    if len(names) < 3:
        raise DataError(f"split_by: movie needs at least 3 movies, found {len(names)}; "
                        "use split_by: random")
    n = len(labels)
    targets = {"test": params.test_size * n, "validation": params.validation_size * n}
    out: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    # Largest movies first into train, so one huge film cannot swamp a small split.
    names.sort(key=lambda m: -len(by_movie[m]))
    for movie in names:
        rows = by_movie[movie]
        for split in ("test", "validation"):
            if len(out[split]) + len(rows) <= targets[split] * 1.1 and len(rows) < n * 0.5:
                out[split].extend(rows)
                break
        else:
            out["train"].extend(rows)
    return {k: np.asarray(sorted(v), dtype=int) for k, v in out.items()}


def split(rows: list[dict[str, Any]], params: PrepareParams) -> dict[str, list[dict[str, Any]]]:
    labels = np.asarray([r["label"] for r in rows])
    _require_both_classes(labels, "data set")
    if params.split_by == "movie":
        parts = _movie_split(labels, [r["movie_id"] for r in rows], params)
    else:
        parts = _random_split(labels, params)
    out = {}
    for name in SPLITS:
        if len(parts[name]) == 0:
            raise DataError(f"the {name} split is empty: add data or change the split sizes")
        _require_both_classes(labels[parts[name]], f"{name} split")
        out[name] = [rows[i] for i in parts[name]]
    return out


def splits_hash(splits: dict[str, list[dict[str, Any]]]) -> str:
    digest = hashlib.sha256()
    for name in SPLITS:
        for row in splits[name]:
            digest.update(f"{name}\t{row['label']}\t{row['text']}\n".encode())
    return digest.hexdigest()


def mix_into_train(splits: dict[str, list[dict[str, Any]]],
                   extra: list[dict[str, Any]]) -> int:
    """Add cleaned `extra` reviews to the train split only; returns how many were added.

    Validation and test stay the source's own (the recent reviews a retrain is
    judged on); an extra review whose text is already in any split is skipped,
    so nothing held out leaks into training."""
    if not extra:
        return 0
    kept, _ = clean(extra)
    seen = {normalise(r["text"]) for part in splits.values() for r in part}
    added = [r for r in kept if normalise(r["text"]) not in seen]
    splits["train"] = splits["train"] + added
    return len(added)


def prepare_records(rows: list[dict[str, Any]], params: PrepareParams,
                    extra: list[dict[str, Any]] | None = None
                    ) -> tuple[dict[str, list[dict[str, Any]]], PrepareStats]:
    """Clean and split rows already read (`extra` joins the train split); pure (no files)."""
    kept, dropped = clean(rows)
    splits = split(kept, params)
    dropped["mixed_in"] = mix_into_train(splits, extra or [])
    stats = PrepareStats(
        rows_in=len(rows),
        sizes={k: len(v) for k, v in splits.items()},
        spoiler_rates={k: round(float(np.mean([r["label"] for r in v])), 4)
                       for k, v in splits.items()},
        split_by=params.split_by,
        data_hash=splits_hash(splits),
        **dropped,
    )
    return splits, stats


def run(source: Path, out_dir: Path, params: PrepareParams) -> PrepareStats:
    rows = read_reviews(source, params.max_rows)
    extra = read_reviews(Path(params.mix_with), params.mix_max_rows) if params.mix_with else []
    splits, stats = prepare_records(rows, params, extra)
    for name, part in splits.items():
        write_jsonl(out_dir / f"{name}.jsonl", part)
    (out_dir / "prepare.json").write_text(
        json.dumps({"source": str(source), **stats.as_dict()}, indent=2) + "\n")
    log.info("Prepared source=%s rows_in=%d sizes=%s spoiler_rates=%s dropped=%s",
             source, stats.rows_in, stats.sizes, stats.spoiler_rates,
             {"empty": stats.empty_dropped, "duplicates": stats.duplicates_dropped,
              "conflicting": stats.conflicting_dropped})
    if params.mix_with:
        log.info("Mixed into train source=%s reviews=%d", params.mix_with, stats.mixed_in)
    return stats
