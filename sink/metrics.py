"""Prometheus metrics of the sink and the `/metrics` + `/healthz` HTTP server."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

ROWS_WRITTEN = Counter(
    "spoiler_sink_rows_written", "Rows inserted or changed, by table.", ["table"]
)
MESSAGES = Counter(
    "spoiler_sink_messages", "Kafka messages handled (stored or dead-lettered), by topic role.",
    ["topic"],
)
BATCH_SIZE = Histogram(
    "spoiler_sink_batch_size", "Messages per database transaction.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000),
)
WRITE_SECONDS = Histogram(
    "spoiler_sink_write_seconds", "Time of one successful batch transaction.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter("spoiler_sink_retries", "Failed database writes that were retried.")
DEAD_LETTERS = Counter(
    "spoiler_sink_dead_letters", "Messages the sink refused, by reason.", ["reason"]
)
HEALTHY = Gauge("spoiler_sink_healthy", "1 while the sink can write to PostgreSQL, else 0.")
BATCH_FAILURES = Gauge(
    "spoiler_sink_batch_failures",
    "Consecutive failed attempts to store the batch being written (0 while writes succeed).",
)
CONSUMER_LAG = Gauge(
    "spoiler_sink_consumer_lag",
    "Messages on the broker not yet committed by this sink process, by topic role.",
    ["topic"],
)


@dataclass
class Health:
    """What `/healthz` reports; updated by the consume loop."""

    stall_after_s: float = 60.0
    database_ok: bool = True
    detail: str = "starting"
    # Consecutive failed attempts at the same batch, and where that batch starts.
    failures: int = 0
    failing_batch: str = ""
    last_loop: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def beat(self) -> None:
        self.last_loop = time.monotonic()

    def set_database(self, ok: bool, detail: str) -> None:
        with self._lock:
            self.database_ok, self.detail = ok, detail
        HEALTHY.set(1 if ok else 0)

    def set_failures(self, attempts: int, batch: str) -> None:
        with self._lock:
            self.failures, self.failing_batch = attempts, batch
        BATCH_FAILURES.set(attempts)

    def report(self) -> tuple[bool, dict[str, object]]:
        with self._lock:
            stalled = time.monotonic() - self.last_loop > self.stall_after_s
            ok = self.database_ok and not stalled
            body: dict[str, object] = {
                "status": "ok" if ok else "unhealthy",
                "database": "ok" if self.database_ok else "unavailable",
                "detail": "consume loop stalled" if stalled else self.detail,
            }
            if self.failures:
                body["failing_batch"] = {"attempts": self.failures, "offsets": self.failing_batch}
        return ok, body


def serve(
    health: Health, host: str, port: int, registry: CollectorRegistry = REGISTRY
) -> ThreadingHTTPServer:
    """Start `/metrics` and `/healthz` on a daemon thread; the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, body = health.report()
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sink-metrics", daemon=True).start()
    return server


__all__ = [
    "BATCH_FAILURES",
    "BATCH_SIZE",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "HEALTHY",
    "MESSAGES",
    "RETRIES",
    "ROWS_WRITTEN",
    "WRITE_SECONDS",
    "Health",
    "serve",
]
