"""Prometheus metrics of the producer (names in docs/architecture.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

log = logging.getLogger(__name__)


@dataclass
class ProducerMetrics:
    registry: CollectorRegistry
    sent: Counter
    failed: Counter
    skipped: Counter
    labels_sent: Counter
    send_latency: Histogram
    server: Any = None

    @classmethod
    def create(cls) -> ProducerMetrics:
        # One registry per run, so in-process runs (tests) never clash.
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            sent=Counter("spoiler_producer_sent", "Reviews the broker acknowledged.",
                         registry=registry),
            failed=Counter("spoiler_producer_failed", "Messages whose delivery failed.",
                           registry=registry),
            skipped=Counter("spoiler_producer_skipped", "Input records not sent, by reason.",
                            ["reason"], registry=registry),
            labels_sent=Counter("spoiler_producer_labels_sent",
                                "Labels the broker acknowledged.", registry=registry),
            send_latency=Histogram(
                "spoiler_producer_send_latency_seconds",
                "Time from produce() to the broker's acknowledgement.",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
        )

    def serve(self, host: str, port: int) -> None:
        """Start `/metrics` on host:port (port 0: no server)."""
        if port == 0:
            return
        try:
            self.server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.warning("Metrics server not started port=%d error=%s: another process holds "
                        "the port; pass --metrics-port 0 or another port", port, exc)
            return
        log.info("Metrics at http://%s:%d/metrics", host, port)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
