"""collect: export the labelled reviews the pipeline stored in PostgreSQL as a snapshot.

Writes `<out>/reviews.jsonl` (the IMDB Spoiler Dataset layout plus review_id
and produced_at, which `prepare` reads like any other source) and
`<out>/manifest.json` (the SQL query and its parameters, row count, the
snapshot's sha256, the time window the rows span and the class counts).

Nothing in either file depends on when or from where it was collected: rows
are ordered by (produced_at, review_id), keys are sorted, timestamps are UTC,
so the same database content gives byte-identical files and DVC sees no
change. The labels are the delayed ground truth the sink stored; the review
text comes from `reviews` (review_outcomes carries the summary only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spoiler_common.settings import PostgresSettings, load_settings
from training.exceptions import CollectError, DataError
from training.params import CollectParams

log = logging.getLogger(__name__)

REVIEWS_FILE = "reviews.jsonl"
MANIFEST_FILE = "manifest.json"

# The newest `limit` labelled reviews of the window, then written oldest first.
QUERY = """\
SELECT o.review_id, o.movie_id, r.user_id, r.review_date, o.rating, r.review_summary,
       r.review_text, o.actual_spoiler AS is_spoiler, o.produced_at, o.labelled_at
FROM review_outcomes o
JOIN reviews r ON r.review_id = o.review_id
WHERE o.actual_spoiler IS NOT NULL
  AND (%(since)s::timestamptz IS NULL OR o.produced_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR o.produced_at < %(until)s::timestamptz)
ORDER BY o.produced_at DESC, o.review_id DESC
LIMIT %(limit)s"""

# What the database holds overall: named in the error when the window is empty or short.
TOTALS = """\
SELECT count(*), min(produced_at), max(produced_at)
FROM review_outcomes WHERE actual_spoiler IS NOT NULL"""


@dataclass(frozen=True)
class Snapshot:
    rows: list[dict[str, Any]]
    manifest: dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _parse_time(value: str | None, name: str) -> str | None:
    if value is None or not str(value).strip():
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise DataError(f"collect.{name} = {value!r} is not an ISO-8601 time; use e.g. "
                        "2026-12-01T12:00:00+00:00, or null for no bound") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def _query_args(params: CollectParams) -> dict[str, Any]:
    return {"since": _parse_time(params.since, "since"),
            "until": _parse_time(params.until, "until"),
            "limit": params.max_rows or None}


def fetch(params: CollectParams, pg: PostgresSettings | None = None
          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The window's labelled reviews (oldest first) and the database's overall totals."""
    import psycopg
    from psycopg.rows import dict_row

    pg = pg or load_settings(PostgresSettings)
    where = f"{pg.host}:{pg.port}/{pg.database}"
    args = _query_args(params)
    try:
        with psycopg.connect(pg.conninfo(), connect_timeout=10) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            with conn.cursor(row_factory=dict_row) as cur:
                rows = list(cur.execute(QUERY, args))
                total = cur.execute(TOTALS).fetchone() or {}
                totals = {"count": total.get("count", 0), "first": _iso(total.get("min")),
                          "last": _iso(total.get("max"))}
    except psycopg.errors.UndefinedTable as exc:
        raise CollectError(f"PostgreSQL at {where} has no review_outcomes view ({exc}); "
                           "apply the sink's migrations: `python -m sink migrate`") from exc
    except psycopg.OperationalError as exc:
        why = " ".join(str(exc).split())
        raise CollectError(f"cannot reach PostgreSQL at {where} ({why}); start "
                           "the stack (`make stack-up`) or set SPOILER_PG_HOST, SPOILER_PG_PORT, "
                           "SPOILER_PG_DATABASE and SPOILER_PG_PASSWORD") from exc
    rows.reverse()
    return rows, totals


def snapshot_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Database rows -> reviews in the dataset layout (what `prepare` reads)."""
    out = []
    for r in records:
        out.append({
            "review_id": r["review_id"],
            "review_date": r["review_date"],
            "movie_id": r["movie_id"],
            "user_id": r["user_id"],
            "is_spoiler": bool(r["is_spoiler"]),
            "review_text": r["review_text"],
            "rating": r["rating"],
            "review_summary": r["review_summary"] or "",
            "produced_at": _iso(r["produced_at"]),
            "labelled_at": _iso(r["labelled_at"]),
        })
    return out


def encode(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                   for r in rows).encode("utf-8")


def check(rows: list[dict[str, Any]], params: CollectParams, totals: dict[str, Any]) -> None:
    """Stop with one line when the window cannot train a classifier."""
    window = (f"window since={params.since or '-'} until={params.until or '-'}"
              + (f" newest={params.max_rows}" if params.max_rows else ""))
    held = (f"the database holds {totals.get('count', 0)} labelled reviews"
            + (f", produced {totals['first']} .. {totals['last']}" if totals.get("first") else ""))
    fix = "widen collect.since/until/max_rows in the params file, or wait for more labels"
    if not rows:
        raise DataError(f"no labelled reviews in the {window} ({held}): {fix}")
    if len(rows) < params.min_labels:
        raise DataError(f"only {len(rows)} labelled reviews in the {window}, fewer than "
                        f"collect.min_labels={params.min_labels} ({held}): {fix}")
    spoilers = sum(1 for r in rows if r["is_spoiler"])
    fewest = min(spoilers, len(rows) - spoilers)
    if fewest == 0:
        only = "spoilers" if spoilers else "non-spoilers"
        raise DataError(f"all {len(rows)} labelled reviews in the {window} are {only}: a "
                        f"classifier needs both classes; {fix}")
    if fewest < params.min_per_class:
        raise DataError(f"only {fewest} reviews of one class among {len(rows)} in the {window}, "
                        f"fewer than collect.min_per_class={params.min_per_class}: {fix}")


def build(records: list[dict[str, Any]], params: CollectParams,
          totals: dict[str, Any]) -> Snapshot:
    rows = snapshot_rows(records)
    check(rows, params, totals)
    data = encode(rows)
    spoilers = sum(1 for r in rows if r["is_spoiler"])
    manifest = {
        "source": "postgresql: review_outcomes JOIN reviews",
        "query": QUERY,
        "parameters": _query_args(params),
        "rows": len(rows),
        "data_hash": hashlib.sha256(data).hexdigest(),
        "file": REVIEWS_FILE,
        "window": {
            "since": _query_args(params)["since"], "until": _query_args(params)["until"],
            "max_rows": params.max_rows,
            "first_produced_at": rows[0]["produced_at"],
            "last_produced_at": rows[-1]["produced_at"],
            "first_labelled_at": min(r["labelled_at"] for r in rows),
            "last_labelled_at": max(r["labelled_at"] for r in rows),
        },
        "class_counts": {"spoiler": spoilers, "not_spoiler": len(rows) - spoilers},
    }
    return Snapshot(rows, manifest)


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic replace; an identical file is left untouched (same bytes, same mtime)."""
    if path.is_file() and path.read_bytes() == data:
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write(snapshot: Snapshot, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out_dir / REVIEWS_FILE, encode(snapshot.rows))
    _write_if_changed(out_dir / MANIFEST_FILE, (json.dumps(
        snapshot.manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def run(params: CollectParams, out_dir: Path | None = None,
        pg: PostgresSettings | None = None) -> dict[str, Any]:
    """Query, check and write the snapshot; returns the manifest."""
    records, totals = fetch(params, pg)
    snapshot = build(records, params, totals)
    out = out_dir or Path(params.out)
    write(snapshot, out)
    m = snapshot.manifest
    log.info("Collected rows=%d spoilers=%d window=%s..%s data_hash=%s out=%s", m["rows"],
             m["class_counts"]["spoiler"], m["window"]["first_produced_at"],
             m["window"]["last_produced_at"], m["data_hash"][:12], out)
    return m


def preflight(params: CollectParams, pg: PostgresSettings | None = None) -> dict[str, Any]:
    """The checks `collect` makes, without writing: `retrain` runs it before `dvc repro`."""
    records, totals = fetch(params, pg)
    return build(records, params, totals).manifest
