"""Helpers for the stream worker's integration tests (imported by conftest and the tests)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from spoiler_common.contracts import ReviewPublished, encode
from spoiler_common.kafka import consumer, producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings


def bundle_copy(src: Path, dest: Path, version: str) -> Path:
    """The same weights under another version (what a retrained roll-out looks like on disk)."""
    shutil.copytree(src, dest)
    meta = json.loads((dest / "bundle.json").read_text())
    meta["version"] = version
    (dest / "bundle.json").write_text(json.dumps(meta, indent=2))
    return dest


def review(i: int, text: str, *, prefix: str = "r", summary: str = "") -> ReviewPublished:
    return ReviewPublished(
        review_id=f"{prefix}{i}", produced_at=datetime.now(UTC), review_date="1 May 2020",
        movie_id=f"tt{i % 17}", user_id=f"u{i % 23}", review_text=text, review_summary=summary,
    )


def real_texts(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["review_text"] for _, line in zip(range(n), fh, strict=False)]


def kafka_producer(settings: KafkaSettings) -> Producer:
    # Room for the near-max-size message of the bad-input corpus.
    return producer(settings, "sp-test", **{"message.max.bytes": 1_048_000})


def send_raw(settings: KafkaSettings, topic: str,
             messages: list[tuple[bytes | None, bytes | None]]) -> None:
    p = kafka_producer(settings)
    for key, value in messages:
        p.produce(topic, key=key, value=value)
        p.poll(0)
    assert p.flush(30) == 0, "messages not delivered within 30 s"


def send_reviews(settings: KafkaSettings, topic: str, reviews: list[ReviewPublished]) -> None:
    send_raw(settings, topic, [(r.review_id.encode(), encode(r)) for r in reviews])


class TopicReader:
    """Reads a topic from the beginning with its own group; `until` polls for a condition."""

    def __init__(self, settings: KafkaSettings, topic: str, group: str) -> None:
        self._c: Consumer = consumer(settings, group, "sp-test-reader")
        self._c.subscribe([topic])
        self.values: list[bytes] = []
        self.keys: list[bytes | None] = []
        self.partitions: list[int] = []

    def poll(self, seconds: float = 0.5) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for m in self._c.consume(500, timeout=0.2):
                if m.error() is None:
                    value, partition = m.value(), m.partition()
                    # Every message the services publish has a value (no tombstones).
                    assert value is not None and partition is not None, m.topic()
                    self.values.append(value)
                    self.keys.append(m.key())
                    self.partitions.append(partition)

    def until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} "
                                     f"(have {len(self.values)} messages)")
            self.poll()

    def close(self) -> None:
        self._c.close()


@dataclass
class WorkerProc:
    """One `python -m stream_processor worker` subprocess."""

    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    history: list[int] = field(default_factory=list)

    def start(self) -> WorkerProc:
        fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream_processor", "worker"], cwd=REPO_ROOT,
            env=self.env, stdout=fh, stderr=subprocess.STDOUT,
        )
        self.history.append(self.proc.pid)
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def http(self, path: str, body: Any = None, method: str | None = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                payload = resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            payload, status, ctype = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        return status, json.loads(payload) if "json" in ctype else payload.decode()

    def wait_ready(self, timeout: float = 90.0, partitions: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n"
                                     f"{self.log.read_text()[-3000:]}")
            try:
                status, last = self.http("/readyz")
                if status == 200 and (not partitions or last.get("partitions")):
                    return dict(last)
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout:.0f}s (last {last}):\n"
                             f"{self.log.read_text()[-3000:]}")

    def metric(self, name: str) -> float:
        """Sum of a metric's samples in /metrics (all label sets)."""
        _, text = self.http("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head = line.split(" ")[0]
                if head == name or head.startswith(name + "{"):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
