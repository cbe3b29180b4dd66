"""confluent-kafka client construction from settings, shared by every service."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from spoiler_common.settings import KafkaSettings

# Durable, ordered, de-duplicated on retry: the settings every project producer uses.
RELIABLE_PRODUCER: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 256 * 1024,
}


def admin_client(settings: KafkaSettings, **overrides: Any) -> AdminClient:
    return AdminClient({**settings.librdkafka(), **overrides})


def producer(settings: KafkaSettings, client_id: str, **overrides: Any) -> Producer:
    return Producer(
        {**settings.librdkafka(), "client.id": client_id, **RELIABLE_PRODUCER, **overrides}
    )


def consumer(settings: KafkaSettings, group_id: str, client_id: str, **overrides: Any) -> Consumer:
    """A consumer that commits only when told to: offsets follow durable writes."""
    return Consumer(
        {
            **settings.librdkafka(),
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            **overrides,
        }
    )


__all__ = ["RELIABLE_PRODUCER", "admin_client", "consumer", "producer"]
