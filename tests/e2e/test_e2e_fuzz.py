"""Thousands of hostile messages on all four topics through the real broker, worker and sink.

Each mutant's expected outcome comes from the shared decoder itself (accepted, or
rejected with a reason); valid sentinels are interleaved. Afterwards: every
sentinel has its prediction and rows, every rejected message is a dead letter on
the topic and in the table with the decoder's reason (the worker and the sink
agreeing on reviews), nothing restarted, consumer lag is zero, and the monitor
computes over the stored rows without failing. Prints the reasons seen.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from devstack.procs import free_port
from spoiler_common.contracts import DeadLetter, decode, decode_record, encode
from spoiler_common.exceptions import ContractError
from spoiler_common.kafka import consumer, producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicRole, TopicSpec
from tests.fuzz_support import MODELS, ROLES, mutant, valid_message
from tests.integration.sink.conftest import SinkKit, SinkProcess
from tests.integration.stream_processor.sp_support import WorkerProc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MUTANTS_PER_TOPIC = 750
SENTINEL_EVERY = 5
SEED = 11


def _expected(role: str, key: bytes | None, value: bytes | None) -> str:
    """The shared decoder's verdict: 'accepted' or the reason code."""
    try:
        if role == "dead_letters":
            decode(value, DeadLetter)
        else:
            decode_record(key, value, MODELS[role])
    except ContractError as exc:
        return exc.reason
    return "accepted"


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def _lag(kafka: KafkaSettings, group: str, topics: list[str]) -> int:
    c = consumer(kafka, group, "fuzz-lag")
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(6 if "dead" not in t else 3)]
        total = 0
        for tp in c.committed(parts, timeout=10):
            _, high = c.get_watermark_offsets(tp, timeout=10)
            total += high - max(tp.offset, 0)
        return total
    finally:
        c.close()


def test_fuzzed_messages_on_every_topic_end_processed_or_dead_lettered(
    topics: dict[str, TopicSpec], kafka_settings: KafkaSettings, pg_settings: PostgresSettings,
    tiny_bundle: Path, unique_id: str, tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    # (role, key, value, expected, sentinel review id or None)
    plan: list[tuple[TopicRole, bytes | None, bytes | None, str, str | None]] = []
    n = 0
    for i in range(MUTANTS_PER_TOPIC):
        for role in ROLES:
            rid = f"m{role[0]}{i}"
            key, value = mutant(rng, role, rid, i)
            plan.append((role, key, value, _expected(role, key, value), None))
            if i % SENTINEL_EVERY == 0 and role != "dead_letters":
                n += 1
                sid = f"s{role[0]}{n}"
                msg = valid_message(role, sid, n)
                plan.append((role, sid.encode(), encode(msg), "accepted", sid))
    published: list[tuple[str, int, int]] = []
    prod = producer(kafka_settings, "fuzz", **{"message.max.bytes": 2_000_000})
    for role, key, value, _, _ in plan:
        def done(err: Any, msg: Any) -> None:
            assert err is None, err
            published.append((msg.topic(), msg.partition(), msg.offset()))
        prod.produce(topics[role].name, value, key=key, on_delivery=done)
        prod.poll(0)
        prod.flush(30)  # one at a time: `published` lines up with `plan`
    assert len(published) == len(plan)
    expected = Counter(e for *_, e, _ in plan)
    print(f"\npublished {len(plan)} messages ({4 * MUTANTS_PER_TOPIC} mutants); decoder "
          f"verdicts: {dict(expected.most_common())}")

    kit = SinkKit(kafka_settings, pg_settings, f"fuzz-sink-{unique_id}", tmp_path)
    sink: SinkProcess = kit.start_sink(batch_size=500)
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_WORKER_")}
    worker_port = free_port()
    worker_env.update({
        "SPOILER_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SPOILER_BUNDLE_PATH": str(tiny_bundle),
        "SPOILER_WORKER_CHALLENGER_PATH": "",  # off whatever .env says (tests/conftest.py)
        "SPOILER_WORKER_APP_ID": f"fuzz-worker-{unique_id}",
        "SPOILER_WORKER_WEB_PORT": str(worker_port),
        "SPOILER_WORKER_DATADIR": str(tmp_path / "faust"),
        "SPOILER_WORKER_BATCH_SIZE": "32", "PYTHONUNBUFFERED": "1",
    })
    worker = WorkerProc(worker_env, worker_port, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        _, text = worker.http("/metrics")
        worker_started = _metric(text, "process_start_time_seconds")
        sink_started = sink.metric("process_start_time_seconds")
        _run_and_check(kit, sink, worker, plan, published, kafka_settings, unique_id)
        _, text = worker.http("/metrics")
        assert _metric(text, "process_start_time_seconds") == worker_started
        assert sink.metric("process_start_time_seconds") == sink_started
        assert worker.proc is not None and worker.proc.poll() is None and sink.alive()
        assert worker.history == [worker.proc.pid] and len(kit.processes) == 1
        _monitor_survives(pg_settings, tiny_bundle)
    finally:
        worker.kill()
        sink.kill9()


def _run_and_check(kit: SinkKit, sink: SinkProcess, worker: WorkerProc, plan: list[Any],
                   published: list[tuple[str, int, int]], kafka: KafkaSettings,
                   unique_id: str) -> None:
    reviews_topic = kit.topic("reviews")
    want_letters: dict[tuple[str, str, int, int], str] = {}  # (service, coords) -> reason
    rows: Counter[str] = Counter()
    dlq_topic_messages = 0
    for (role, _key, _value, verdict, _), (topic, part, off) in zip(plan, published,
                                                                  strict=True):
        if role == "dead_letters":
            dlq_topic_messages += 1
            continue
        if verdict == "accepted":
            rows[role] += 1
            if role == "reviews":
                rows["predictions"] += 1
            continue
        want_letters[("sink", topic, part, off)] = verdict
        if topic == reviews_topic:
            want_letters[("stream_processor", topic, part, off)] = verdict
    # Every dead letter published lands on the topic and, through the sink, in the table;
    # plus one row per message published to the dead-letter topic itself.
    want_table = len(want_letters) + dlq_topic_messages

    def settled() -> bool:
        counts = kit.counts()
        return counts["dead_letters"] >= want_table and counts["predictions"] >= rows[
            "predictions"] and counts["reviews"] >= rows["reviews"] and counts["labels"] >= rows[
            "labels"]
    deadline = time.monotonic() + 600
    while not settled():
        assert worker.proc is not None and worker.proc.poll() is None, \
            worker.log.read_text()[-3000:]
        assert sink.alive(), sink.log()[-3000:]
        assert time.monotonic() < deadline, f"not settled: {kit.counts()} want {rows} " \
            f"dead letters {want_table}\n{sink.log()[-2000:]}"
        time.sleep(1)

    # Sentinels: a prediction and their rows.
    sentinels = {s: role for role, _, _, _, s in plan if s}
    stored = {t: {r[0] for r in kit.query(f"SELECT review_id FROM {t}")}
              for t in ("reviews", "predictions", "labels")}
    for sid, role in sentinels.items():
        assert sid in stored[role], f"sentinel {sid} missing from {role}"
        if role == "reviews":
            assert sid in stored["predictions"], f"sentinel review {sid} has no prediction"
    # Every rejected message: in the table with the decoder's reason, by each service.
    got = {(s, t, p, o): r for s, t, p, o, r in kit.query(
        "SELECT service, source_topic, source_partition, source_offset, reason "
        "FROM dead_letters WHERE service IN ('sink', 'stream_processor')")}
    missing = {k: v for k, v in want_letters.items() if k not in got}
    assert not missing, f"{len(missing)} rejected messages without a dead letter: " \
        f"{list(missing.items())[:5]}"
    wrong = {k: (v, got[k]) for k, v in want_letters.items() if got[k] != v}
    assert not wrong, f"reasons differ from the decoder's: {list(wrong.items())[:5]}"
    assert kit.counts()["dead_letters"] == want_table
    # ... and on the dead-letter topic.
    dlq = consumer(kafka, f"fuzz-dlq-{unique_id}", "fuzz-dlq")
    dlq.subscribe([kit.topic("dead_letters")])
    on_topic: set[tuple[str, str | None, int | None, int | None]] = set()
    deadline = time.monotonic() + 120
    while not set(want_letters) <= on_topic and time.monotonic() < deadline:
        for m in dlq.consume(1000, 1.0):
            if m.error() is None:
                try:
                    letter = decode(m.value(), DeadLetter)
                except ContractError:
                    continue  # a mutant published straight to the dead-letter topic
                on_topic.add((letter.service, letter.source_topic, letter.partition,
                              letter.offset))
    dlq.close()
    assert set(want_letters) <= on_topic
    # Consumer lag ends at zero (the worker commits every second).
    groups = {kit.group_id: [kit.topic(r) for r in ROLES],
              worker.env["SPOILER_WORKER_APP_ID"]: [reviews_topic]}
    for group, names in groups.items():
        deadline = time.monotonic() + 60
        while (lag := _lag(kafka, group, names)) != 0:
            assert time.monotonic() < deadline, f"group {group} lag stays {lag}"
            time.sleep(1)
    reasons = Counter(r for (r,) in kit.query("SELECT reason FROM dead_letters"))
    print(f"dead letters by reason: {dict(reasons.most_common())}")
    print(f"rows: {kit.counts()}; sentinels {len(sentinels)}; rejected messages "
          f"{len(want_letters)} (worker and sink agree on every reason)")


def _monitor_survives(pg: PostgresSettings, bundle: Path) -> None:
    """The monitor's recomputation over the fuzzed database finishes without an error."""
    env = {**os.environ, "SPOILER_PG_DATABASE": pg.database, "SPOILER_MONITOR_KAFKA_LAG": "false",
           "SPOILER_BUNDLE_PATH": str(bundle)}
    result = subprocess.run([sys.executable, "-m", "monitoring", "once", "--json"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "failed" not in result.stderr, result.stderr[-3000:]
    assert any(json.loads(line)["name"].startswith("spoiler_") for line in
               result.stdout.splitlines())
