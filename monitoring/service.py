"""The monitor loop: read PostgreSQL and Kafka, compute, publish, repeat."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from monitoring import comparison, db, lag, reference, window
from monitoring.exceptions import MonitorError
from monitoring.exporter import MonitorMetrics
from monitoring.grafana import Notifier, NullNotifier
from monitoring.settings import MonitorSettings
from spoiler_common.bundle import manifest_file
from spoiler_common.drift import STATISTICS
from spoiler_common.settings import KafkaSettings, PostgresSettings, load_settings
from spoiler_common.topics import topic_specs

log = logging.getLogger(__name__)


@dataclass
class Monitor:
    """Everything one recomputation needs, wired once by `build_monitor`."""

    settings: MonitorSettings
    pg: PostgresSettings
    kafka: KafkaSettings | None
    metrics: MonitorMetrics = field(default_factory=MonitorMetrics)
    notifier: Notifier = field(default_factory=NullNotifier)
    admin: AdminClient | None = None
    _conn: psycopg.Connection | None = None
    _reference: reference.Reference | None = None
    _reference_mtime: float | None = None
    _last_version: str | None = None
    _last_success: float | None = None
    _drifting: set[tuple[str, str, str]] = field(default_factory=set)
    _unreferenced: set[str] = field(default_factory=set)
    # The last champion/challenger comparison and when it was computed (monotonic).
    _comparison: list[window.Sample] = field(default_factory=list)
    _comparison_at: float | None = None

    # -- inputs -------------------------------------------------------------
    def _load_reference(self) -> reference.Reference | None:
        file = manifest_file(self.settings.bundle_path)
        try:
            mtime = file.stat().st_mtime
        except OSError:
            if self._reference_mtime is not None or self._reference is None:
                log.warning("No bundle.json at %s: drift and the estimate are not reported "
                            "until it appears (SPOILER_BUNDLE_PATH).", file)
            self._reference_mtime = None
            self._reference = None
            return None
        if mtime != self._reference_mtime:
            try:
                self._reference = reference.load(file)
                log.info("Loaded the drift reference. model_version=%s bundle=%s",
                         self._reference.model_version, file)
            except MonitorError as exc:
                self.metrics.errors.labels("reference").inc()
                log.error("Cannot use the bundle's reference: %s", exc)
                self._reference = None
            self._reference_mtime = mtime
        return self._reference

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.pg.conninfo(), connect_timeout=10)
        return self._conn

    # -- one pass -----------------------------------------------------------
    def run_once(self) -> list[window.Sample]:
        """Recompute every statistic and publish it; returns the samples."""
        started = time.monotonic()
        ok = True
        samples: list[window.Sample] = []
        ref = self._load_reference()
        if ref is not None:
            samples += window.reference_samples(ref)
        try:
            samples += self._database_samples(ref)
        except (psycopg.Error, OSError) as exc:
            ok = False
            self.metrics.errors.labels("postgres").inc()
            log.error("Reading PostgreSQL failed; model metrics are absent until it works. "
                      "error=%s", exc)
            if self._conn is not None:
                self._conn.close()
            self._conn = None
        if self.admin is not None and self.kafka is not None:
            try:
                samples += self._lag_samples()
            except KafkaException as exc:
                ok = False
                self.metrics.errors.labels("kafka").inc()
                log.error("Reading consumer lag failed. error=%s", exc)
        if ok:
            self._last_success = time.time()
        if self._last_success is not None:
            # Kept through failed passes, so MonitorStale can see how old it gets.
            samples.append(window.Sample("spoiler_monitor_last_success_timestamp_seconds", {},
                                         self._last_success))
        self.metrics.snapshot.replace(samples)
        self.metrics.runs.labels("ok" if ok else "error").inc()
        self.metrics.duration.observe(time.monotonic() - started)
        return samples

    def _database_samples(self, ref: reference.Reference | None) -> list[window.Sample]:
        windows = self.settings.window_seconds()
        snap = db.read(self._connection(), windows, self.settings.max_rows)
        mins = window.MinCounts(
            labelled=self.settings.min_labelled, per_class=self.settings.min_class,
            estimate=self.settings.min_estimate, delay=self.settings.min_delay,
        )
        out: list[window.Sample] = []
        for version, rows in snap.rows.items():
            if ref is not None and version != ref.model_version and (
                    version not in self._unreferenced):
                self._unreferenced.add(version)
                log.warning("Predictions of a model version other than the bundle's: their "
                            "drift, floors and bounds are not reported. model_version=%s "
                            "bundle_version=%s (SPOILER_BUNDLE_PATH)", version,
                            ref.model_version)
            for name, secs in windows.items():
                out += window.compute(rows, snap.now, name, secs, version, ref, mins)
        if snap.truncated:
            log.warning("The longest window has more than %d predictions; statistics use the "
                        "newest ones (raise SPOILER_MONITOR_MAX_ROWS).", self.settings.max_rows)
        out += self._comparison_samples(snap.now)
        out.append(window.Sample("spoiler_monitor_window_truncated", {}, float(snap.truncated)))
        if snap.newest_prediction is not None:
            out.append(window.Sample("spoiler_pipeline_freshness_seconds", {},
                                     max(0.0, snap.now - snap.newest_prediction)))
        for name in windows:
            dead = snap.dead_letters.get(name, [])
            for service, reason, n in dead:
                out.append(window.Sample("spoiler_pipeline_dead_letters",
                                         {"window": name, "service": service, "reason": reason},
                                         n))
            stored = snap.reviews_stored.get(name, 0)
            total_dead = sum(n for _, _, n in dead)
            out.append(window.Sample("spoiler_pipeline_reviews_stored", {"window": name}, stored))
            if stored + total_dead > 0:
                out.append(window.Sample("spoiler_pipeline_dead_letter_ratio", {"window": name},
                                         total_dead / (stored + total_dead)))
        self._notify(snap.newest_model_version, out)
        return out

    def _comparison_samples(self, now: float) -> list[window.Sample]:
        """Champion vs challenger per window; recomputed every comparison_interval_s."""
        s = self.settings
        due = (self._comparison_at is None
               or time.monotonic() - self._comparison_at >= s.comparison_interval_s)
        if due:
            windows = s.window_seconds()
            pairs = comparison.read_pairs(self._connection(), max(windows.values()),
                                          s.max_rows)
            limits = comparison.ComparisonSettings(
                min_labels=s.min_comparison_labels, alpha=s.comparison_alpha,
                draws=s.comparison_draws, max_rows=s.comparison_max_rows)
            self._comparison = comparison.compute(pairs, now, windows, limits)
            self._comparison_at = time.monotonic()
        return self._comparison

    def _lag_samples(self) -> list[window.Sample]:
        assert self.admin is not None and self.kafka is not None
        topics = [spec.name for spec in topic_specs(self.kafka.topic_prefix)]
        found = lag.consumer_lag(self.admin, topics, self.settings.consumer_groups)
        return [window.Sample("spoiler_kafka_consumer_lag", {"group": g, "topic": t}, n)
                for (g, t), n in sorted(found.items())]

    def _notify(self, newest_version: str | None, samples: list[window.Sample]) -> None:
        if newest_version is not None and newest_version != self._last_version:
            if self._last_version is not None:
                log.info("Model version changed. old=%s new=%s", self._last_version,
                         newest_version)
            self.notifier.model_version_changed(self._last_version, newest_version)
            self._last_version = newest_version
        # The same comparison the alert rules make, on the window they watch: a drift
        # statistic above the threshold exported beside it.
        alert_window = self.settings.alert_window
        limits = {(s.labels["feature"], s.labels["statistic"], s.labels["model_version"]):
                  s.value for s in samples
                  if s.name == "spoiler_drift_threshold" and s.labels["window"] == alert_window}
        drifting: set[tuple[str, str, str]] = set()
        for s in samples:
            stat = s.name.removeprefix("spoiler_drift_")
            if stat not in STATISTICS or s.labels["window"] != alert_window:
                continue
            key = (s.labels["feature"], stat, s.labels["model_version"])
            limit = limits.get(key)
            if limit is None or not s.value > limit:
                continue
            drifting.add(key)
            if key not in self._drifting:
                log.warning("Drift detected. feature=%s statistic=%s model_version=%s "
                            "window=%s value=%.4g threshold=%.4g", *key, alert_window,
                            s.value, limit)
                self.notifier.drift(key[0], key[1], alert_window, key[2], s.value, limit)
        self._drifting = drifting

    # -- loop ---------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        self.metrics.up.set(1)
        log.info("Monitor running. windows=%s interval_s=%s", ",".join(self.settings.windows),
                 self.settings.interval_s)
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:  # one bad pass must not end the service
                self.metrics.errors.labels("compute").inc()
                log.exception("Recomputation failed; retrying next interval.")
            stop.wait(max(0.0, self.settings.interval_s - (time.monotonic() - started)))
        self.metrics.up.set(0)
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def build_monitor(settings: MonitorSettings | None = None, pg: PostgresSettings | None = None,
                  kafka: KafkaSettings | None = None, notifier: Notifier | None = None,
                  ) -> Monitor:
    """The bootstrap: settings (from the environment unless given) → a wired monitor.

    Kafka's admin client only when `kafka_lag` is on; the Grafana notifier from the
    settings unless one is given (tests pass their own). An invalid setting raises
    ConfigError before anything connects.
    """
    from monitoring import grafana
    from spoiler_common.kafka import admin_client

    settings = settings or load_settings(MonitorSettings)
    pg = pg or load_settings(PostgresSettings)
    if settings.kafka_lag:
        kafka = kafka or load_settings(KafkaSettings)
    admin = admin_client(kafka) if kafka is not None and settings.kafka_lag else None
    return Monitor(settings=settings, pg=pg, kafka=kafka if admin else None,
                   notifier=notifier or grafana.notifier(settings), admin=admin)


__all__ = ["Monitor", "build_monitor"]
