"""Sink throughput: topics pre-filled with N reviews + N predictions + N labels, timed
until all 3N rows are stored, against a raw COPY of the same rows (the ceiling).

    .venv/bin/python -m benchmarks.sink [--quick]

Needs the native stack (Kafka, PostgreSQL). Uses its own topic prefix and two
throw-away databases, removed afterwards.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from devstack.postgres import scratch_database
from sink.metrics import ROWS_WRITTEN
from sink.migrate import migrate
from sink.service import GIL_SWITCH_INTERVAL_S, build_sink
from sink.settings import SinkSettings
from sink.tables import LABELS, PREDICTIONS, REVIEWS, label_row, prediction_row, review_row
from spoiler_common.contracts import (
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    encode,
    headers_for,
)
from spoiler_common.kafka import admin_client, producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import ensure_topics, topic_name, topic_specs

log = logging.getLogger(__name__)

REAL_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "imdb-real-sample" / "reviews.jsonl"
TARGET_ROWS_PER_S = 20_000
TARGET_RATIO = 0.5
Contract = ReviewPublished | SpoilerPredicted | LabelArrived


def _texts() -> list[tuple[str, str]]:
    """Real review texts when the sample is there (read in place), else synthetic ones."""
    if REAL_SAMPLE.exists():
        with REAL_SAMPLE.open() as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return [(r["review_text"][:20_000], r.get("review_summary", "")[:1000]) for r in rows]
    return [(f"Synthetic review {i}. " + "The plot twist was fine. " * (20 + i % 60), "ok")
            for i in range(500)]


def make_messages(n: int) -> list[Contract]:
    texts = itertools.cycle(_texts())
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    out: list[Contract] = []
    for i in range(n):
        rid, (text, summary) = f"bench-{i}", next(texts)
        at = t0 + timedelta(milliseconds=i)
        p = (i * 7919 % 1000) / 1000
        out.append(ReviewPublished(review_id=rid, produced_at=at, review_date="1 May 2024",
                                   movie_id=f"tt{i % 997:07d}", user_id=f"ur{i % 10007}",
                                   review_text=text, review_summary=summary, rating=i % 10 + 1))
        out.append(SpoilerPredicted(review_id=rid, spoiler_probability=p, is_spoiler=p >= 0.5,
                                    threshold=0.5, model_name="bench", model_version="v1",
                                    produced_at=at, predicted_at=at + timedelta(milliseconds=40),
                                    inference_ms=25.0, queue_ms=10.0, end_to_end_ms=40.0,
                                    input_tokens=200, unknown_tokens=1))
        out.append(LabelArrived(review_id=rid, is_spoiler=i % 4 == 0,
                                labelled_at=at + timedelta(minutes=1)))
    return out


def _progress(label: str, total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A rich progress bar on a TTY; otherwise a log line with rate and ETA every 5 s."""
    started = time.monotonic()
    if sys.stdout.isatty():
        from rich.progress import Progress

        bar = Progress()
        task = bar.add_task(label, total=total)
        bar.start()
        return (lambda done: bar.update(task, completed=done)), bar.stop
    state = {"next": started + 5.0}

    def update(done: int) -> None:
        now = time.monotonic()
        if now >= state["next"] and done:
            rate = done / (now - started)
            print(f"  {label}: {done}/{total} rows, {rate:,.0f} rows/s, "
                  f"ETA {(total - done) / rate:,.0f}s", flush=True)
            state["next"] = now + 5.0

    return update, lambda: None


def _prefill(kafka: KafkaSettings, messages: list[Contract]) -> float:
    prod = producer(kafka, "bench-sink-prefill")
    started = time.perf_counter()
    for i, m in enumerate(messages):
        # confluent-kafka's stubs want this exact list type (lists are invariant).
        headers: list[tuple[str, str | bytes | None]] = list(headers_for(m, "bench"))
        while True:
            try:
                prod.produce(topic_name(m.topic_role, kafka.topic_prefix), encode(m),  # type: ignore[arg-type]
                             key=m.review_id.encode(), headers=headers)
                break
            except BufferError:
                prod.poll(0.05)
        if i % 10_000 == 0:
            prod.poll(0)
    if prod.flush(120):
        raise RuntimeError("pre-fill: Kafka did not take every message within 120s")
    return time.perf_counter() - started


def _count(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM reviews) + (SELECT count(*) FROM predictions) "
        "+ (SELECT count(*) FROM labels)").fetchone()
    return int(row[0]) if row else 0


def _rows_written() -> float:
    # The sink's own counter, bumped after each commit: polling count(*) on the
    # tables instead would load PostgreSQL while it is being measured.
    return sum(sample.value for metric in ROWS_WRITTEN.collect() for sample in metric.samples
               if sample.name.endswith("_total")
               and sample.labels.get("table") in ("reviews", "predictions", "labels"))


def _run_sink(kafka: KafkaSettings, pg: PostgresSettings, total: int, group: str) -> float:
    settings = SinkSettings(group_id=group, metrics_port=0, migrate_on_start=False)
    sink = build_sink(settings, kafka, pg)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # as `python -m sink run` does
    failure: list[BaseException] = []

    def target() -> None:
        try:
            sink.run()
        except BaseException as exc:
            failure.append(exc)

    update, close = _progress("sink", total)
    started = time.perf_counter()
    thread = threading.Thread(target=target, name="bench-sink", daemon=True)
    thread.start()
    baseline = _rows_written()
    try:
        while (done := int(_rows_written() - baseline)) < total:
            if failure or not thread.is_alive():
                raise RuntimeError(f"sink stopped early: {failure[:1]}")
            update(done)
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        close()
        sink.stop()
        thread.join(60)
        sys.setswitchinterval(previous)
    with psycopg.connect(pg.conninfo()) as conn:
        stored = _count(conn)
    if stored != total:
        raise RuntimeError(f"the sink reported {total} rows written but {stored} are stored")
    return elapsed


def _raw_copy(pg: PostgresSettings, messages: list[Contract]) -> dict[str, float]:
    """The ceiling: COPY of the same rows straight into the same empty tables, in one
    transaction, in text and in binary format (the sink stages with binary COPY)."""
    tables = {"reviews": REVIEWS, "predictions": PREDICTIONS, "labels": LABELS}
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in tables}
    for m in messages:
        if isinstance(m, ReviewPublished):
            rows["reviews"].append(review_row(m))
        elif isinstance(m, SpoilerPredicted):
            rows["predictions"].append(prediction_row(m))
        else:
            rows["labels"].append(label_row(m))
    seconds: dict[str, float] = {}
    with psycopg.connect(pg.conninfo()) as conn:
        for fmt in ("text", "binary"):
            conn.execute("TRUNCATE reviews, predictions, labels")
            conn.commit()
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                for name, table in tables.items():
                    columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
                    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
                        sql.Identifier(name), columns,
                        sql.SQL(" (FORMAT BINARY)" if fmt == "binary" else ""))
                    with cur.copy(copy_sql) as copy:
                        if fmt == "binary":
                            copy.set_types(table.types)
                        for row in rows[name]:
                            copy.write_row(row)
            seconds[fmt] = time.perf_counter() - started
    return seconds


def run(quick: bool = False) -> dict[str, Any]:
    """Benchmark the sink and a raw COPY baseline; print a table; return the numbers."""
    n = 10_000 if quick else 100_000
    total = 3 * n
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(topic_prefix=f"bench{tag}.")
    base = PostgresSettings()
    admin = admin_client(kafka)
    specs = topic_specs(kafka.topic_prefix)
    print(f"sink benchmark: {n:,} reviews + {n:,} predictions + {n:,} labels", flush=True)
    messages = make_messages(n)
    ensure_topics(admin, specs)
    try:
        prefill_s = _prefill(kafka, messages)
        print(f"  pre-filled {total:,} messages in {prefill_s:.1f}s", flush=True)
        with scratch_database(f"bench_sink_{tag}", base) as pg, \
                scratch_database(f"bench_copy_{tag}", base) as pg_copy:
            migrate(pg.conninfo())
            migrate(pg_copy.conninfo())
            sink_s = _run_sink(kafka, pg, total, f"bench-sink-{tag}")
            copies = _raw_copy(pg_copy, messages)
    finally:
        for future in admin.delete_topics([s.name for s in specs],
                                          operation_timeout=30).values():
            future.result()
    copy_s = min(copies.values())  # the faster format is the ceiling
    sink_rate, copy_rate = total / sink_s, total / copy_s
    ratio = sink_rate / copy_rate
    result = {
        "reviews": n,
        "rows": total,
        "sink_seconds": round(sink_s, 2),
        "sink_rows_per_s": round(sink_rate),
        "raw_copy_seconds": round(copy_s, 2),
        "raw_copy_text_rows_per_s": round(total / copies["text"]),
        "raw_copy_binary_rows_per_s": round(total / copies["binary"]),
        "raw_copy_rows_per_s": round(copy_rate),
        "ratio_to_raw_copy": round(ratio, 3),
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "target_ratio": TARGET_RATIO,
        "meets_rate_target": sink_rate >= TARGET_ROWS_PER_S,
        "meets_ratio_target": ratio >= TARGET_RATIO,
    }
    print(f"{'':24}{'rows':>10}{'seconds':>10}{'rows/s':>12}")
    print(f"{'sink (Kafka -> PG)':24}{total:>10,}{sink_s:>10.2f}{sink_rate:>12,.0f}")
    for fmt, secs in copies.items():
        print(f"{'raw COPY, ' + fmt:24}{total:>10,}{secs:>10.2f}{total / secs:>12,.0f}")
    rate_ok, ratio_ok = sink_rate >= TARGET_ROWS_PER_S, ratio >= TARGET_RATIO
    print(f"target >= {TARGET_ROWS_PER_S:,} rows/s: {'met' if rate_ok else 'NOT met'}; "
          f"ratio to the faster raw COPY {ratio:.2f}, target >= {TARGET_RATIO}: "
          f"{'met' if ratio_ok else 'NOT met'}")
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    run(quick="--quick" in sys.argv[1:])
