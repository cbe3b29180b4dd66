"""Consumer lag per group and topic from the Kafka admin API."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from spoiler_common.lag import lag_by_topic

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0


def consumer_lag(admin: AdminClient, topics: Iterable[str],
                 groups: Iterable[str] = ()) -> dict[tuple[str, str], int]:
    """(group, topic) -> messages not yet committed, summed over partitions.

    Only `topics` count (the pipeline's, under its prefix). With no `groups`
    given, every group that has committed offsets on those topics is reported.
    A partition without a committed offset counts from its earliest offset (the
    rule is `spoiler_common.lag`'s, shared with the sink's own lag gauge).
    """
    wanted = set(topics)
    group_ids = list(groups)
    if not group_ids:
        listing = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result()
        group_ids = sorted(g.group_id for g in listing.valid)
    committed: dict[str, list[TopicPartition]] = {}
    for group in group_ids:
        # One group per request: the admin API accepts exactly one.
        futures = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_S)
        for future in futures.values():
            result = future.result()
            parts = [tp for tp in (result.topic_partitions or []) if tp.topic in wanted]
            if parts:
                committed[group] = parts
    if not committed:
        return {}
    partitions = {(tp.topic, tp.partition) for parts in committed.values() for tp in parts}
    latest = _offsets(admin, partitions, OffsetSpec.latest())
    earliest = _offsets(admin, partitions, OffsetSpec.earliest())
    watermarks = {key: (earliest.get(key), high) for key, high in latest.items()}
    return {(group, topic): n for group, parts in committed.items()
            for topic, n in lag_by_topic(parts, watermarks).items()}


def _offsets(admin: AdminClient, partitions: set[tuple[str, int]],
             spec: OffsetSpec) -> dict[tuple[str, int], int]:
    request = {TopicPartition(t, p): spec for t, p in partitions}
    futures = admin.list_offsets(request, request_timeout=TIMEOUT_S)
    out: dict[tuple[str, int], int] = {}
    for tp, future in futures.items():
        out[(tp.topic, tp.partition)] = int(future.result().offset)
    return out


__all__ = ["consumer_lag"]
