"""Reads what the monitor needs from PostgreSQL (the sink's schema; read-only)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import psycopg

from monitoring.window import Rows, empty_rows

log = logging.getLogger(__name__)

# Newest first, so a capped read keeps the most recent predictions. The served model's
# only: a challenger scored in shadow is compared in monitoring.comparison, and must not
# count as a model version of the product (nor flip the "model version changed" notice).
PREDICTIONS_SQL = """
SELECT p.model_version,
       extract(epoch FROM p.predicted_at)::float8,
       extract(epoch FROM coalesce(p.produced_at, r.produced_at))::float8,
       p.spoiler_probability, p.is_spoiler, p.threshold,
       p.input_tokens, p.unknown_tokens, r.text_words, r.rating,
       CASE WHEN r.review_id IS NULL THEN NULL
            ELSE (coalesce(btrim(r.review_summary), '') = '') END,
       l.is_spoiler, extract(epoch FROM l.labelled_at)::float8
FROM predictions p
LEFT JOIN reviews r ON r.review_id = p.review_id
LEFT JOIN labels l ON l.review_id = p.review_id
WHERE p.predicted_at > now() - make_interval(secs => %(secs)s) AND p.role = 'champion'
ORDER BY p.predicted_at DESC
LIMIT %(limit)s
"""

DEAD_LETTERS_SQL = """
SELECT coalesce(service, 'unknown'), coalesce(reason, 'unknown'), count(*)
FROM dead_letters
WHERE coalesce(failed_at, stored_at) > now() - make_interval(secs => %(secs)s)
GROUP BY 1, 2
"""

REVIEWS_SQL = """
SELECT count(*) FROM reviews WHERE stored_at > now() - make_interval(secs => %(secs)s)
"""


@dataclass
class Snapshot:
    """One read of the database."""

    now: float
    rows: dict[str, Rows]  # by model_version
    truncated: bool
    newest_prediction: float | None
    newest_model_version: str | None
    dead_letters: dict[str, list[tuple[str, str, int]]]  # window -> (service, reason, n)
    reviews_stored: dict[str, int]  # window -> n


def _column(values: list[object], dtype: type = float) -> np.ndarray:
    if dtype is bool:
        return np.array([bool(v) for v in values], dtype=bool)
    return np.array([np.nan if v is None else float(v) for v in values],  # type: ignore[arg-type]
                    dtype=float)


def to_rows(records: list[tuple[object, ...]]) -> Rows:
    """Row tuples of PREDICTIONS_SQL (minus model_version) to column arrays."""
    if not records:
        return empty_rows()
    cols = list(zip(*records, strict=True))
    return Rows(
        predicted_at=_column(list(cols[0])),
        produced_at=_column(list(cols[1])),
        probability=_column(list(cols[2])),
        predicted=_column(list(cols[3]), bool),
        threshold=_column(list(cols[4])),
        input_tokens=_column(list(cols[5])),
        unknown_tokens=_column(list(cols[6])),
        text_words=_column(list(cols[7])),
        rating=_column(list(cols[8])),
        summary_empty=_column(list(cols[9])),
        actual=_column(list(cols[10])),
        labelled_at=_column(list(cols[11])),
    )


def read(conn: psycopg.Connection, windows: dict[str, float], max_rows: int) -> Snapshot:
    """Everything one recomputation needs, in one short read-only transaction."""
    longest = max(windows.values())
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute("SELECT extract(epoch FROM now())::float8")
        row = cur.fetchone()
        now = float(row[0]) if row else 0.0
        cur.execute(PREDICTIONS_SQL, {"secs": longest, "limit": max_rows})
        records = cur.fetchall()
        newest: float | None = float(records[0][1]) if records else None
        newest_version = str(records[0][0]) if records else None
        if newest is None:
            # Nothing in the longest window: still say how stale the newest prediction is.
            cur.execute("SELECT extract(epoch FROM max(predicted_at))::float8, "
                        "(array_agg(model_version ORDER BY predicted_at DESC))[1] "
                        "FROM predictions WHERE role = 'champion'")
            found = cur.fetchone()
            if found and found[0] is not None:
                newest, newest_version = float(found[0]), str(found[1])
        dead: dict[str, list[tuple[str, str, int]]] = {}
        stored: dict[str, int] = {}
        for name, secs in windows.items():
            cur.execute(DEAD_LETTERS_SQL, {"secs": secs})
            dead[name] = [(str(s), str(r), int(n)) for s, r, n in cur.fetchall()]
            cur.execute(REVIEWS_SQL, {"secs": secs})
            one = cur.fetchone()
            stored[name] = int(one[0]) if one else 0
    by_version: dict[str, list[tuple[object, ...]]] = {}
    for rec in records:
        by_version.setdefault(str(rec[0]), []).append(rec[1:])
    return Snapshot(
        now=now,
        rows={version: to_rows(recs) for version, recs in by_version.items()},
        truncated=len(records) >= max_rows,
        newest_prediction=newest,
        newest_model_version=newest_version,
        dead_letters=dead,
        reviews_stored=stored,
    )


__all__ = ["Snapshot", "read", "to_rows"]
