"""The producer wired once: settings, Kafka settings and its /metrics server.

`build_producer` is the bootstrap the CLI and the tests call; `Producer.run` is one
replay (a file or a synthetic stream) through `producer.replay.replay`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from producer.metrics import ProducerMetrics
from producer.replay import ReplayOptions, ReplaySummary, replay
from producer.settings import ProducerSettings
from producer.sources import Pass
from spoiler_common.settings import KafkaSettings, load_settings


@dataclass
class Producer:
    """Publishes passes of records; one metrics registry (and server) for all its runs."""

    settings: ProducerSettings
    kafka: KafkaSettings
    metrics: ProducerMetrics

    def run(self, passes: Iterable[Pass], options: ReplayOptions | None = None,
            stop: threading.Event | None = None) -> ReplaySummary:
        """Publish every good record; raises BrokerUnavailable before sending if Kafka is not
        there (see `replay`)."""
        return replay(passes, self.kafka, self.settings, options, stop=stop,
                      metrics=self.metrics)

    def close(self) -> None:
        """Stop the /metrics server (the runs flushed their own deliveries)."""
        self.metrics.close()


def build_producer(settings: ProducerSettings | None = None,
                   kafka: KafkaSettings | None = None) -> Producer:
    """The bootstrap: settings (from the environment unless given) → a producer serving
    /metrics on SPOILER_PRODUCER_METRICS_PORT (0: none).

    An invalid setting raises ConfigError before anything connects; a port already
    taken is logged and the producer runs without /metrics (its job is the messages).
    """
    settings = settings or load_settings(ProducerSettings)
    kafka = kafka or load_settings(KafkaSettings)
    metrics = ProducerMetrics.create()
    metrics.serve(settings.metrics_host, settings.metrics_port)
    return Producer(settings=settings, kafka=kafka, metrics=metrics)


__all__ = ["Producer", "build_producer"]
