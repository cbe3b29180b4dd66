"""Fault injection: kill -9 and restart, in turn, the worker, the sink, the broker
and PostgreSQL during a paced replay; afterwards the stored rows are exactly the
distinct reviews (0 lost, 0 duplicated) and the dead-letter topic holds exactly
the injected bad messages. Prints a table: fault, recovery seconds, lost, duplicated.

The broker and PostgreSQL here are private instances (own ports and state), so
killing them never disturbs the shared native stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from devstack import kafka as devkafka
from devstack.procs import free_port, pid_alive, read_pid
from spoiler_common.contracts import DeadLetter, decode
from spoiler_common.kafka import consumer, producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings, StackSettings
from spoiler_common.topics import topic_name
from tests.e2e.conftest import PY, ServiceProcess, start_sink_and_worker, wait_for
from tests.integration.sink.conftest import PrivatePostgres

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.slow]
PHASE_REVIEWS = 300
RATE = 40
BAD_MESSAGES: list[tuple[bytes | None, bytes]] = [
    (b"bad-1", b"{not json"),
    (b"bad-2", b"[1, 2, 3]"),
    (b"bad-3", b'{"schema_version": 1, "review_id": "bad-3"}'),
    (b"bad-4", b"\xff\xfe\x00binary"),
    (b"bad-5", json.dumps({"schema_version": 9, "review_id": "bad-5"}).encode()),
    (None, b'{"schema_version": 1, "review_id": "bad-6", "review_text": "   "}'),
]


@dataclass
class PrivateKafka:
    stack: StackSettings
    settings: KafkaSettings

    def up(self) -> None:
        devkafka.up(self.stack, self.settings)

    def kill9(self) -> None:
        pid = read_pid(self.stack.state_dir / "kafka" / "kafka.pid")
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 30, "broker to die")

    def down(self) -> None:
        devkafka.down(self.stack)


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    port, controller = free_port(), free_port()
    stack = StackSettings(state_dir=tmp_path / "state", kafka_port=port,
                          kafka_controller_port=controller, kafka_heap="-Xms128m -Xmx512m")
    kafka = PrivateKafka(stack, KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}",
                                              topic_prefix="faults."))
    kafka.up()
    yield kafka
    kafka.down()


def kill9_postgres(cluster: PrivatePostgres) -> None:
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == postmaster]
    for pid in [postmaster, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(p) for p in [postmaster, *children]), 30, "postgres to die")
    # Nothing reaps the dead postmaster in a container, and PostgreSQL takes its
    # zombie for a live server; the lock is stale once the process is gone.
    (cluster.data / "postmaster.pid").unlink()
    for stale in cluster.root.glob(f".s.PGSQL.{cluster.port}*"):
        stale.unlink()


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return -1


def stored(pg: PostgresSettings) -> dict[str, int]:
    with psycopg.connect(pg.conninfo(), connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM reviews),"
            " (SELECT count(DISTINCT review_id) FROM reviews),"
            " (SELECT count(*) FROM predictions),"
            " (SELECT count(DISTINCT review_id) FROM predictions),"
            " (SELECT count(*) FROM labels), (SELECT count(DISTINCT review_id) FROM labels)"
        ).fetchone()
    assert row is not None
    keys = ("reviews", "reviews_distinct", "predictions", "predictions_distinct", "labels",
            "labels_distinct")
    return dict(zip(keys, row, strict=True))


def safe_stored(pg: PostgresSettings) -> dict[str, int] | None:
    try:
        return stored(pg)
    except psycopg.OperationalError:
        return None


def test_kill_and_restart_every_service_loses_and_duplicates_nothing(
    private_kafka: PrivateKafka,
    private_postgres: PrivatePostgres,
    tiny_bundle: Path,
    tmp_path: Path,
    unique_id: str,
    service_factory: Callable[..., ServiceProcess],
) -> None:
    kafka, pg = private_kafka.settings, private_postgres.settings
    assert pg.password is not None
    env = {
        "SPOILER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SPOILER_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SPOILER_PG_HOST": pg.host, "SPOILER_PG_PORT": str(pg.port),
        "SPOILER_PG_DATABASE": pg.database, "SPOILER_PG_USER": pg.user,
        "SPOILER_PG_PASSWORD": pg.password.get_secret_value(), "SPOILER_PG_SSLMODE": "disable",
        "SPOILER_SINK_GROUP_ID": f"faults-sink-{unique_id}",
        "SPOILER_SINK_SESSION_TIMEOUT_MS": "6000",
        "SPOILER_WORKER_APP_ID": f"faults-worker-{unique_id}",
        "SPOILER_WORKER_SESSION_TIMEOUT_S": "6",
    }
    pair = start_sink_and_worker(service_factory, free_port, env, tmp_path / "faust",
                                 {"SPOILER_BUNDLE_PATH": str(tiny_bundle)})
    sink, worker, services = pair.sink, pair.worker, pair.services

    # The injected bad messages, published once before the faults begin.
    prod = producer(kafka, "faults-test")
    reviews_topic = topic_name("reviews", kafka.topic_prefix)
    for key, value in BAD_MESSAGES:
        prod.produce(reviews_topic, key=key, value=value)
    assert prod.flush(30) == 0
    del prod  # an idle client would log every reconnect attempt while the broker is down

    def restart_worker() -> None:
        worker.kill9()
        worker.restart()

    def restart_sink() -> None:
        sink.kill9()
        sink.restart()

    def restart_broker() -> None:
        private_kafka.kill9()
        time.sleep(1)
        private_kafka.up()

    def restart_postgres() -> None:
        kill9_postgres(private_postgres)
        time.sleep(1)
        private_postgres.start()

    faults: list[tuple[str, Callable[[], None]]] = [
        ("worker", restart_worker), ("sink", restart_sink),
        ("broker", restart_broker), ("postgres", restart_postgres)]
    table: list[tuple[str, float, float, int, int]] = []
    sent = 0
    for phase, (name, inject) in enumerate(faults):
        reviews = tmp_path / f"phase-{phase}.jsonl"
        subprocess.run([PY, "-m", "producer", "synth", "--n", str(PHASE_REVIEWS), "--seed", "5",
                        "--start-index", str(sent), "--out", str(reviews)],
                       check=True, cwd=REPO_ROOT, capture_output=True)
        replay = subprocess.Popen(
            [PY, "-m", "producer", "replay", str(reviews), "--rate", str(RATE),
             "--label-delay", "0", "--metrics-port", "0"],
            env={**env, "PATH": "/usr/bin:/bin"}, cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(PHASE_REVIEWS / RATE / 2)
        fault_at = time.monotonic()
        inject()
        # Back: the killed part answers again (broker and PostgreSQL: `up`/`start`
        # return once they accept clients; then the sink must report healthy).
        wait_for(pair.healthy, 180,
                 f"services healthy after the {name} fault", services)
        back = time.monotonic() - fault_at
        assert replay.wait(300) == 0, replay.stderr.read().decode()[-2000:] if replay.stderr else ""
        sent += PHASE_REVIEWS
        want = sent

        def caught_up(want: int = want) -> bool:
            now = safe_stored(pg)
            return now is not None and min(now["reviews_distinct"], now["predictions_distinct"],
                                           now["labels_distinct"]) >= want
        wait_for(caught_up, 300, f"all {want} reviews stored after the {name} fault", services,
                 interval=0.5)
        caught = time.monotonic() - fault_at
        now = stored(pg)
        lost = want - min(now["reviews_distinct"], now["predictions_distinct"],
                          now["labels_distinct"])
        duplicated = sum(now[t] - now[f"{t}_distinct"] for t in ("reviews", "predictions",
                                                                 "labels"))
        table.append((name, back, caught, lost, duplicated))

    print("\n| fault (kill -9) | healthy again s | all rows stored s | lost | duplicated |\n"
          "|---|---|---|---|---|")
    for name, back, caught, lost, duplicated in table:
        print(f"| {name} | {back:.1f} | {caught:.1f} | {lost} | {duplicated} |")
    assert [(n, lost, dup) for n, _, _, lost, dup in table] == [(n, 0, 0) for n, _ in faults]
    final = stored(pg)
    assert final["reviews"] == final["predictions"] == final["labels"] == sent

    # The dead-letter topic holds exactly the injected messages (each at least once;
    # a worker killed before committing may publish one again — counted, not lost).
    dlq = consumer(kafka, f"faults-dlq-{unique_id}", "faults-test")
    dlq.subscribe([topic_name("dead_letters", kafka.topic_prefix)])
    seen: dict[bytes, int] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(seen) < len(BAD_MESSAGES):
        record = dlq.poll(1.0)
        if record is None or record.error():
            continue
        letter = decode(record.value(), DeadLetter)
        seen[letter.original_value()] = seen.get(letter.original_value(), 0) + 1
    dlq.close()
    assert set(seen) == {value for _, value in BAD_MESSAGES}
