"""Topics as code: the declared spec and the create-or-check logic."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from spoiler_common.exceptions import TopicSpecError

log = logging.getLogger(__name__)

TopicRole = Literal["reviews", "predictions", "shadow_predictions", "labels", "dead_letters"]
ROLES: tuple[TopicRole, ...] = (
    "reviews", "predictions", "shadow_predictions", "labels", "dead_letters",
)


@dataclass(frozen=True)
class TopicSpec:
    role: TopicRole
    name: str
    partitions: int
    replication_factor: int
    key: str
    contract: str
    config: dict[str, str] = field(default_factory=dict)

    def with_prefix(self, prefix: str) -> TopicSpec:
        return TopicSpec(
            self.role,
            f"{prefix}{self.name}",
            self.partitions,
            self.replication_factor,
            self.key,
            self.contract,
            dict(self.config),
        )


@cache
def _load_spec() -> tuple[TopicSpec, ...]:
    text = resources.files("spoiler_common").joinpath("topics.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)["topics"]
    return tuple(
        TopicSpec(
            role=role,
            name=entry["name"],
            partitions=int(entry["partitions"]),
            replication_factor=int(entry["replication_factor"]),
            key=str(entry["key"]),
            contract=str(entry["contract"]),
            config={k: str(v) for k, v in (entry.get("config") or {}).items()},
        )
        for role, entry in raw.items()
    )


def topic_specs(prefix: str = "", replication_factor: int | None = None) -> list[TopicSpec]:
    """The declared topics, names prefixed; optionally another replication factor."""
    specs = [spec.with_prefix(prefix) for spec in _load_spec()]
    if replication_factor is not None:
        specs = [
            TopicSpec(s.role, s.name, s.partitions, replication_factor, s.key, s.contract, s.config)
            for s in specs
        ]
    return specs


def topic_name(role: TopicRole, prefix: str = "") -> str:
    """The full name of the topic that plays `role`."""
    for spec in _load_spec():
        if spec.role == role:
            return f"{prefix}{spec.name}"
    raise KeyError(role)


@dataclass(frozen=True)
class TopicReport:
    name: str
    action: Literal["created", "ok", "mismatch"]
    detail: str = ""


def _wait_visible(admin: AdminClient, names: list[str], timeout_s: float) -> None:
    """Wait until created topics show in the metadata with a leader for every partition.

    CreateTopics returns when the controller has the topic; brokers' metadata follows a
    moment later, so a client that subscribes or lists at once (a test, a service started
    right after `spoiler-topics ensure`) could otherwise miss it.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        waiting = [n for n in names if n not in topics or topics[n].error is not None
                   or any(p.leader < 0 for p in topics[n].partitions.values())]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TopicSpecError(f"topics created but not visible after {timeout_s:.0f}s: "
                                 f"{', '.join(waiting)}; check the broker's log")
        time.sleep(0.2)


def ensure_topics(
    admin: AdminClient, specs: list[TopicSpec], timeout_s: float = 30.0
) -> list[TopicReport]:
    """Create missing topics; check existing ones against the spec.

    A topic with fewer partitions than declared is a mismatch, not silently
    altered: repartitioning changes key→partition mapping, which an operator
    has to decide on.
    """
    existing = admin.list_topics(timeout=timeout_s).topics
    reports: list[TopicReport] = []
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
                for s in missing
            ],
            operation_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                # Another process created it between list and create: fine.
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise TopicSpecError(f"could not create topic {name}: {exc}") from exc
            reports.append(TopicReport(name, "created"))
            log.info("Created topic topic=%s", name)
        _wait_visible(admin, [s.name for s in missing], timeout_s)
    present = [s for s in specs if s.name in existing]
    if present:
        configs = admin.describe_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in present]
        )
        actual_configs = {res.name: fut.result() for res, fut in configs.items()}
        for spec in present:
            partitions = len(existing[spec.name].partitions)
            problems = []
            if partitions != spec.partitions:
                problems.append(f"partitions {partitions} != declared {spec.partitions}")
            actual = actual_configs[spec.name]
            for key, want in spec.config.items():
                got = actual[key].value if key in actual else None
                if got != want:
                    problems.append(f"{key}={got} != declared {want}")
            if problems:
                reports.append(TopicReport(spec.name, "mismatch", "; ".join(problems)))
            else:
                reports.append(TopicReport(spec.name, "ok"))
    return reports


__all__ = [
    "ROLES",
    "TopicReport",
    "TopicRole",
    "TopicSpec",
    "ensure_topics",
    "topic_name",
    "topic_specs",
]
