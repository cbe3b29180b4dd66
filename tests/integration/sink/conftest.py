"""Fixtures for the sink's integration tests (real Kafka, real PostgreSQL).

- `sink_kit`: message factories, a publisher, row counts, and sink runners
  (in-process thread, or a `python -m sink run` subprocess that can be killed).
- `private_postgres`: a throw-away PostgreSQL cluster on a free port that a
  test may stop and start (the shared one on 5432 must never be stopped).
  Reusable by the fault-injection suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from devstack.procs import free_port as _free_port
from sink.service import build_sink
from sink.settings import SinkSettings
from spoiler_common.contracts import (
    LabelArrived,
    ReviewPublished,
    SpoilerPredicted,
    encode,
    headers_for,
)
from spoiler_common.kafka import producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicRole, topic_name

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TABLES = ("reviews", "predictions", "labels", "dead_letters")
Contract = ReviewPublished | SpoilerPredicted | LabelArrived


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` and its last value."""
    end = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


# ---- messages ------------------------------------------------------------------------------

def review(rid: str, i: int = 0, **kw: Any) -> ReviewPublished:
    fields: dict[str, Any] = {
        "review_id": rid, "produced_at": T0 + timedelta(seconds=i), "review_date": "1 May 2024",
        "movie_id": f"tt{i % 97:07d}", "user_id": f"ur{i % 1013}",
        "review_text": f"Review {i}: the twist in act three " + "quite good. " * (i % 40 + 1),
        "review_summary": f"summary {i}", "rating": i % 10 + 1,
    }
    return ReviewPublished(**{**fields, **kw})


def prediction(rid: str, i: int = 0, version: str = "v1", **kw: Any) -> SpoilerPredicted:
    p = (i * 37 % 100) / 100
    fields: dict[str, Any] = {
        "review_id": rid, "spoiler_probability": p, "is_spoiler": p >= 0.5, "threshold": 0.5,
        "model_name": "minilm", "model_version": version,
        "produced_at": T0 + timedelta(seconds=i),
        "predicted_at": T0 + timedelta(seconds=i, milliseconds=250),
        "inference_ms": 12.5, "queue_ms": 3.0, "end_to_end_ms": 250.0,
        "input_tokens": 100 + i % 50, "unknown_tokens": i % 3,
    }
    return SpoilerPredicted(**{**fields, **kw})


def label(rid: str, i: int = 0, **kw: Any) -> LabelArrived:
    fields: dict[str, Any] = {"review_id": rid, "is_spoiler": i % 3 == 0,
                              "labelled_at": T0 + timedelta(minutes=5, seconds=i)}
    return LabelArrived(**{**fields, **kw})


def full_set(n: int, prefix: str = "r") -> list[Contract]:
    """n reviews with one prediction and one label each."""
    out: list[Contract] = []
    for i in range(n):
        rid = f"{prefix}{i}"
        out += [review(rid, i), prediction(rid, i), label(rid, i)]
    return out


# ---- sink subprocess -----------------------------------------------------------------------

@dataclass
class SinkProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}",
                                        timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def healthz(self) -> tuple[int, str]:
        return self._get("/healthz")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` matching `labels` (0 if absent)."""
        code, text = self._get("/metrics")
        if code != 200:
            return 0.0
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    total += sample.value
        return total

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class SinkKit:
    """Everything a sink test needs, bound to this test's topics and database."""

    kafka: KafkaSettings
    pg: PostgresSettings
    group_id: str
    tmp: Path
    processes: list[SinkProcess] = field(default_factory=list)

    review = staticmethod(review)
    prediction = staticmethod(prediction)
    label = staticmethod(label)
    full_set = staticmethod(full_set)
    wait_for = staticmethod(wait_for)

    def topic(self, role: TopicRole) -> str:
        return topic_name(role, self.kafka.topic_prefix)

    def publish(
        self,
        messages: Iterable[Contract | tuple[TopicRole, bytes | None, bytes | None]],
        **producer_overrides: Any,
    ) -> int:
        """Publish contracts (keyed by review_id) or raw (role, key, value) triples."""
        prod = producer(self.kafka, "sink-test", **producer_overrides)
        errors: list[str] = []

        def done(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        count = 0
        for m in messages:
            if isinstance(m, tuple):
                role, key, value = m
                prod.produce(self.topic(role), value, key=key, on_delivery=done)
            else:
                # confluent-kafka's stubs want this exact list type (lists are invariant).
                headers: list[tuple[str, str | bytes | None]] = list(headers_for(m, "test"))
                prod.produce(self.topic(m.topic_role), encode(m),  # type: ignore[arg-type]
                             key=m.review_id.encode(), headers=headers, on_delivery=done)
            count += 1
            if count % 5000 == 0:
                prod.poll(0)
        left = prod.flush(60)
        assert not left and not errors, f"publish failed: {left} left, {errors[:3]}"
        return count

    def query(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg.conninfo(), connect_timeout=3) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def counts(self) -> dict[str, int]:
        """Rows per table; -1 each while the database is unreachable or not migrated."""
        try:
            with psycopg.connect(self.pg.conninfo(), connect_timeout=3) as conn:
                return {
                    t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
                    for t in TABLES
                }
        except psycopg.Error:
            return dict.fromkeys(TABLES, -1)

    def wait_counts(self, expected: dict[str, int], timeout_s: float = 60) -> dict[str, int]:
        def reached() -> dict[str, int] | None:
            now = self.counts()
            return now if all(now[t] >= n for t, n in expected.items()) else None
        try:
            got = wait_for(reached, timeout_s, f"row counts {expected}", every_s=0.3)
        except AssertionError:
            raise AssertionError(
                f"rows never reached {expected}: now {self.counts()}\n"
                + "\n".join(p.log()[-3000:] for p in self.processes)
            ) from None
        return got

    def settings(self, **overrides: Any) -> SinkSettings:
        base: dict[str, Any] = {
            "group_id": self.group_id, "metrics_port": 0, "batch_size": 500,
            "batch_max_wait_s": 0.2, "session_timeout_ms": 6000, "retry_initial_s": 0.2,
            "retry_max_s": 1.0,
        }
        return SinkSettings(**{**base, **overrides})

    @contextlib.contextmanager
    def running(self, **overrides: Any) -> Iterator[None]:
        """An in-process sink on a thread for the body of the `with`; stopped gracefully."""
        sink = build_sink(self.settings(**overrides), self.kafka, self.pg)
        failure: list[BaseException] = []

        def target() -> None:
            try:
                sink.run()
            except BaseException as exc:  # surfaced to the test below
                failure.append(exc)

        thread = threading.Thread(target=target, name="sink-under-test", daemon=True)
        thread.start()
        try:
            yield
        finally:
            sink.stop()
            thread.join(60)
        assert not thread.is_alive(), "sink thread did not stop within 60s"
        if failure:
            raise failure[0]

    def env(self, **overrides: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_")}
        env.update({
            "SPOILER_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "SPOILER_KAFKA_TOPIC_PREFIX": self.kafka.topic_prefix,
            "SPOILER_PG_HOST": self.pg.host,
            "SPOILER_PG_PORT": str(self.pg.port),
            "SPOILER_PG_DATABASE": self.pg.database,
            "SPOILER_PG_USER": self.pg.user,
            "SPOILER_PG_PASSWORD": self.pg.password.get_secret_value() if self.pg.password
            else "",
            "SPOILER_SINK_GROUP_ID": self.group_id,
            "SPOILER_SINK_BATCH_SIZE": "500",
            "SPOILER_SINK_BATCH_MAX_WAIT_S": "0.2",
            "SPOILER_SINK_SESSION_TIMEOUT_MS": "6000",
            "SPOILER_SINK_RETRY_INITIAL_S": "0.2",
            "SPOILER_SINK_RETRY_MAX_S": "1.0",
            "SPOILER_SINK_CONNECT_TIMEOUT_S": "2",
        })
        env.update({f"SPOILER_SINK_{k.upper()}": str(v) for k, v in overrides.items()})
        return env

    def start_sink(self, **overrides: Any) -> SinkProcess:
        """`python -m sink run` as a subprocess; waits until `/healthz` answers."""
        port = _free_port()
        log_path = self.tmp / f"sink-{len(self.processes)}.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sink", "run", "--metrics-port", str(port)],
                cwd=REPO_ROOT, env=self.env(**overrides), stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        sink = SinkProcess(proc, log_path, port)
        self.processes.append(sink)
        wait_for(lambda: sink.healthz()[0] != 0 or not sink.alive(), 30, "sink metrics port")
        assert sink.alive(), f"sink exited early:\n{sink.log()}"
        return sink

    def rows(self, table: str, exclude: tuple[str, ...] = ("stored_at",)) -> list[dict[str, Any]]:
        """Whole table as dicts ordered by primary key, without the volatile columns."""
        with psycopg.connect(self.pg.conninfo()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(table)))
            names = [d.name for d in cur.description or []]
            return [{k: v for k, v in zip(names, row, strict=True) if k not in exclude}
                    for row in cur.fetchall()]

    def committed(self) -> dict[str, int]:
        """Sum of the group's committed offsets per topic role."""
        from confluent_kafka import TopicPartition

        from spoiler_common.kafka import consumer

        cons = consumer(self.kafka, self.group_id, "sink-test-offsets")
        try:
            tps = [TopicPartition(self.topic(r), p) for r in ("reviews", "predictions", "labels")
                   for p in range(6)]
            out: dict[str, int] = {}
            for tp in cons.committed(tps, timeout=10):
                out[tp.topic] = out.get(tp.topic, 0) + max(tp.offset, 0)
            return out
        finally:
            cons.close()


@pytest.fixture
def sink_kit(
    kafka_settings: KafkaSettings, topics: dict[str, Any], pg_settings: PostgresSettings,
    unique_id: str, tmp_path: Path,
) -> Iterator[SinkKit]:
    kit = SinkKit(kafka_settings, pg_settings, f"sink-test-{unique_id}", tmp_path)
    yield kit
    for proc in kit.processes:
        if proc.alive():
            proc.kill9()


# ---- a private PostgreSQL that tests may stop --------------------------------------------

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
               if (p / "pg_ctl").exists()), None)


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary folder) on `port`."""

    root: Path
    port: int
    password: str
    user: str = "spoiler"
    database: str = "spoiler"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def settings(self) -> PostgresSettings:
        return PostgresSettings(host="127.0.0.1", port=self.port, database=self.database,
                                user=self.user, password=self.password, sslmode="disable")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert PG_BIN is not None
        result = subprocess.run(_as_postgres([str(PG_BIN / args[0]), *args[1:]]),
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = (self.root / "postgres.log")
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}\n"
                               f"{log.read_text() if log.exists() else ''}")
        return result

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256")
        self.start()
        with psycopg.connect(host=str(self.root), port=self.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(self.user), sql.Literal(self.password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(self.database), sql.Identifier(self.user)))

    def start(self) -> None:
        # fsync off: the tests stop the server, never the machine.
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.root} -c fsync=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"),
                  "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `immediate` is a crash (recovery on next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        assert PG_BIN is not None
        return subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data),
                                            "status"]), capture_output=True).returncode == 0


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private cluster (role/database `spoiler`); stopped and deleted afterwards."""
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="sink-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    password = PostgresSettings().password
    cluster = PrivatePostgres(root, _free_port(),
                              password.get_secret_value() if password else "test-password")
    try:
        cluster.init()
        yield cluster
    finally:
        if cluster.data.exists() and cluster.running():
            with contextlib.suppress(RuntimeError):
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["PrivatePostgres", "SinkKit", "SinkProcess", "wait_for"]
