"""The replay loop: records in, contract messages and delayed labels out, a summary back.

Callable in-process (`replay(...)`, what the tests and the benchmark do) and from
the CLI (`python -m producer replay|stream`), which only parses options,
installs the signal handlers and prints the summary.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from producer.exceptions import StrictStop, UnsupportedScenario
from producer.metrics import ProducerMetrics
from producer.normalize import to_review
from producer.pacing import DateClock, Pacer, TokenBucket, Unpaced
from producer.progress import ProgressReporter
from producer.publisher import Publisher, keep_label
from producer.settings import ProducerSettings
from producer.sources import Pass
from spoiler_common.contracts import encode, headers_for, utc_now
from spoiler_common.dead_letters import DeadLetterReason
from spoiler_common.exceptions import ContractError
from spoiler_common.settings import KafkaSettings
from synth.scenarios import BASELINE, knobs_for

log = logging.getLogger(__name__)
MAX_BAD_KEPT = 1000
# Scenarios that can be applied to a dataset file without rewriting its text.
FILE_SCENARIOS = ("none", "label_noise", "spoiler_rate")


@dataclass(frozen=True)
class ReplayOptions:
    rate: float | None = None
    speedup: float | None = None
    limit: int | None = None
    label_delay_s: float | None = None  # None: the settings' default
    label_fraction: float | None = None  # None: the settings' default
    include_label: bool = False
    strict: bool = False
    scenario: str = "none"  # applied by the replay to file records (see FILE_SCENARIOS)
    drift_at: int | None = None
    scenario_seed: int = 0
    label_source: str = "dataset"
    progress: bool = True
    total: int | None = None  # for the progress ETA when known


@dataclass(frozen=True)
class BadRecord:
    line: int
    reason: str
    detail: str


@dataclass
class ReplaySummary:
    read: int = 0
    produced: int = 0
    sent: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    bad_records: list[BadRecord] = field(default_factory=list)
    labels_sent: int = 0
    labels_failed: int = 0
    labels_withheld: int = 0
    labels_dropped: int = 0
    undelivered: int = 0
    elapsed_s: float = 0.0
    stopped_by: str = "end"  # end | limit | signal | strict

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.undelivered == 0 and self.stopped_by != "strict"

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read, "sent": self.sent, "failed": self.failed,
            "undelivered": self.undelivered, "skipped": dict(self.skipped),
            "labels_sent": self.labels_sent, "labels_failed": self.labels_failed,
            "labels_withheld": self.labels_withheld, "labels_dropped": self.labels_dropped,
            "elapsed_s": round(self.elapsed_s, 3), "rate_per_s": round(self.rate, 1),
            "stopped_by": self.stopped_by,
            "bad_records": [b.__dict__ for b in self.bad_records],
        }

    def render(self, max_lines: int = 20) -> str:
        lines = [
            f"sent {self.sent}, failed {self.failed + self.undelivered}, "
            f"skipped {sum(self.skipped.values())} of {self.read} read in "
            f"{self.elapsed_s:.1f}s ({self.rate:,.0f} reviews/s); stopped by {self.stopped_by}",
            f"labels: sent {self.labels_sent}, failed {self.labels_failed}, withheld "
            f"{self.labels_withheld}, dropped at exit {self.labels_dropped}",
        ]
        if self.skipped:
            lines.append("skipped by reason: " + ", ".join(
                f"{reason} {count}" for reason, count in self.skipped.most_common()))
        for bad in self.bad_records[:max_lines]:
            lines.append(f"  line {bad.line}: {bad.reason}: {bad.detail}")
        hidden = sum(self.skipped.values()) - min(len(self.bad_records), max_lines)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more")
        return "\n".join(lines)


def _pacer(options: ReplayOptions) -> Pacer:
    if options.rate and options.speedup:
        raise ValueError("--rate and --speedup exclude each other; choose one")
    if options.rate:
        return TokenBucket(options.rate)
    if options.speedup:
        return DateClock(options.speedup)
    return Unpaced()


def replay(
    passes: Iterable[Pass],
    kafka: KafkaSettings,
    settings: ProducerSettings | None = None,
    options: ReplayOptions | None = None,
    *,
    stop: threading.Event | None = None,
    metrics: ProducerMetrics | None = None,
) -> ReplaySummary:
    """Publish every good record of `passes`; return what happened.

    Raises BrokerUnavailable before sending anything when Kafka or the topics are
    missing, and UnsupportedScenario for a scenario a file cannot carry. Bad
    records are skipped and counted (or end the run with `strict`).
    """
    settings = settings or ProducerSettings()
    options = options or ReplayOptions()
    stop = stop or threading.Event()
    if options.scenario not in FILE_SCENARIOS:
        raise UnsupportedScenario(
            f"scenario {options.scenario!r} rewrites review text and cannot be applied to a "
            f"file; use `python -m producer stream --scenario {options.scenario}` "
            f"(file replays support {', '.join(FILE_SCENARIOS)})")
    knobs = knobs_for(options.scenario)
    drift_at = options.drift_at or 0
    scenario_rng = random.Random(options.scenario_seed)
    # Keep a non-spoiler with this probability to move the spoiler rate from the
    # baseline's to the scenario's.
    base, target = BASELINE.spoiler_rate, knobs.spoiler_rate
    keep_negative = min(1.0, base * (1 - target) / (target * (1 - base)))

    pacer = _pacer(options)
    label_delay = settings.label_delay_s if options.label_delay_s is None else options.label_delay_s
    fraction = (settings.label_fraction if options.label_fraction is None
                else options.label_fraction)
    metrics = metrics or ProducerMetrics.create()
    publisher = Publisher(kafka, settings, metrics, label_delay_s=label_delay,
                          label_source=options.label_source)
    publisher.check()
    summary = ReplaySummary()
    skipped_metric = metrics.skipped

    def skip(line: int, reason: str, detail: str) -> None:
        summary.skipped[reason] += 1
        skipped_metric.labels(reason).inc()
        if len(summary.bad_records) < MAX_BAD_KEPT:
            summary.bad_records.append(BadRecord(line, reason, detail))
        if options.strict and reason != "scenario":
            summary.stopped_by = "strict"
            raise StrictStop(f"line {line}: {reason}: {detail}")

    headers: list[tuple[str, bytes]] | None = None
    limit = options.limit
    include_label = options.include_label
    started = time.monotonic()
    with ProgressReporter("sending", limit or options.total, enabled=options.progress,
                          interval_s=settings.progress_interval_s) as progress:
        try:
            for run in passes:
                suffix = f"-L{run.number}" if run.number else ""
                for record in run.records:
                    if stop.is_set():
                        summary.stopped_by = "signal"
                        break
                    index = summary.read
                    summary.read += 1
                    data = record.data
                    if data is None:
                        skip(record.line, record.reason or "invalid", record.detail)
                        continue
                    wait = pacer.wait(data.get("review_date"))
                    while wait > 0 and not stop.is_set():
                        publisher.idle(wait)
                        publisher.send_due_labels()
                        wait = pacer.wait(data.get("review_date"))
                    try:
                        review, label = to_review(data, utc_now(), include_label=include_label,
                                                  id_suffix=suffix, check_nul=record.maybe_nul)
                        value = encode(review)
                    except ContractError as exc:
                        skip(record.line, exc.reason, str(exc.args[0]))
                        continue
                    except Exception as exc:  # the per-record boundary: a bug skips one record
                        log.exception("Record made the producer fail; skipped as internal_error "
                                      "line=%d", record.line)
                        skip(record.line, DeadLetterReason.INTERNAL_ERROR.value,
                             f"{type(exc).__name__}: {exc}")
                        continue
                    if label is not None and index >= drift_at and knobs is not BASELINE:
                        if not label and scenario_rng.random() >= keep_negative:
                            skip(record.line, "scenario", f"{options.scenario}: subsampled")
                            continue
                        if knobs.label_flip and scenario_rng.random() < knobs.label_flip:
                            label = not label
                    if headers is None:
                        headers = headers_for(review, settings.source)
                    review_id = review.review_id
                    if label is not None and not keep_label(review_id, fraction):
                        summary.labels_withheld += 1
                        label = None
                    publisher.send_review(review_id, value, headers, label)
                    publisher.send_due_labels()
                    pacer.sent()
                    summary.produced += 1
                    progress.advance()
                    if limit is not None and summary.produced >= limit:
                        summary.stopped_by = "limit"
                        break
                else:
                    continue
                break
        except StrictStop as exc:
            log.error("Stopped at the first bad record (--strict): %s", exc)
        summary.undelivered = _finish(publisher, summary, stop)
    summary.elapsed_s = time.monotonic() - started
    d = publisher.deliveries
    summary.sent, summary.failed = d.sent, d.failed
    summary.labels_sent, summary.labels_failed = d.labels_sent, d.labels_failed
    return summary


def _finish(publisher: Publisher, summary: ReplaySummary, stop: threading.Event) -> int:
    """Send the labels still due (unless stopped by a signal), then flush."""
    if summary.stopped_by in ("signal", "strict"):
        summary.labels_dropped = publisher.drop_pending_labels()
    else:
        wait = publisher.next_label_in()
        if wait:
            log.info("Waiting for delayed labels count=%d seconds=%.0f",
                     len(publisher.pending_labels), wait)
        while (wait := publisher.next_label_in()) is not None:
            if stop.is_set():
                summary.labels_dropped = publisher.drop_pending_labels()
                break
            publisher.idle(min(wait, 0.5))
            publisher.send_due_labels()
    if summary.labels_dropped:
        log.warning("Labels not sent because the run was stopped count=%d",
                    summary.labels_dropped)
    return publisher.flush()
