"""Proof, on real services, that the model alerts tell the truth (issue 12, item 6).

Two experiments, each against an own Prometheus (never the shared one) loading the
real rule files rendered with short windows (`devstack.promtest.render_rules`):

- **stable replay**: N generated reviews of the undrifted generator through the real
  pipeline, exactly as `make up` runs it: `python -m producer stream` (fast pace,
  labels delayed) -> Kafka -> `python -m stream_processor worker` (the bundle) ->
  `python -m sink run` -> PostgreSQL -> `python -m monitoring run` -> Prometheus. Every
  drift or quality alert that fires in any window is a false alert.
- **scenarios**: each drift scenario of the generator, scored by the same bundle
  (`ModelBundle.predict`, the worker's code path), inserted into its own database at
  a steady pace (one window of baseline, then the drift) with delayed labels, one
  in-process monitor per scenario: seconds from the drift start to each alert, and the
  label-free estimate against realised accuracy before and after.

`python -m devstack alert-proof --write docs/monitoring.md` (`make alert-proof`) runs
both and rewrites the results table in the docs; the integration test
tests/integration/monitoring/test_monitoring_alert_proof.py runs the same functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from devstack.postgres import scratch_database
from devstack.procs import free_port
from devstack.promtest import FOR_SHARE_OF_WINDOW, OwnPrometheus, render_rules
from monitoring.settings import parse_duration
from spoiler_common.bundle import BundleManifest
from spoiler_common.settings import REPO_ROOT, KafkaSettings, PostgresSettings

log = logging.getLogger(__name__)

DRIFT_ALERTS = frozenset({"ScoreDrift", "InputDrift", "PredictedSpoilerRatioShift"})
QUALITY_ALERTS = frozenset({"ModelAccuracyBelowFloor", "ModelF1BelowFloor",
                            "EstimatedAccuracyBelowFloor", "AccuracyEstimateOff"})
MODEL_ALERTS = DRIFT_ALERTS | QUALITY_ALERTS


@dataclass(frozen=True)
class Intent:
    """What a scenario should trigger: any one of `alerts` ((alertname, feature) pairs,
    feature "" for model-level alerts), and which kind of shift it is."""

    alerts: frozenset[tuple[str, str]]
    shift: str  # "none" | "covariate" | "concept"
    note: str


INTENDED: dict[str, Intent] = {
    "none": Intent(frozenset(), "none", "nothing may fire"),
    "spoiler_rate": Intent(frozenset({("ScoreDrift", "score"), ("PredictedSpoilerRatioShift", ""),
                                      ("AccuracyEstimateOff", "")}), "concept",
                           "P(spoiler) changes: scores move, CBPE's calibration stops holding"),
    "length": Intent(frozenset({("InputDrift", "text_words")}), "covariate",
                     "longer reviews, same P(spoiler | review)"),
    "length_short": Intent(frozenset({("InputDrift", "text_words")}), "covariate",
                           "shorter reviews, same P(spoiler | review)"),
    "vocabulary": Intent(frozenset({("InputDrift", "unknown_token_share")}), "covariate",
                         "unseen words and scripts"),
    "rating": Intent(frozenset({("InputDrift", "rating")}), "covariate",
                     "low ratings (and sentiment), same P(spoiler | review)"),
    "label_noise": Intent(frozenset({("ModelAccuracyBelowFloor", ""), ("ModelF1BelowFloor", ""),
                                     ("AccuracyEstimateOff", "")}), "concept",
                          "30 % of labels flipped: inputs unchanged, only labels show it"),
}


def alert_key(labels: dict[str, str]) -> tuple[str, str]:
    return labels["alertname"], labels.get("feature", "")


def describe(labels: dict[str, str]) -> str:
    parts = [labels["alertname"]]
    parts += [labels[k] for k in ("feature", "statistic") if labels.get(k)]
    return "/".join(parts)


@dataclass
class Watch:
    """When each model alert was first seen firing (monotonic clock), per job."""

    prom: OwnPrometheus
    t0: float = field(default_factory=time.monotonic)
    first: dict[tuple[str, str], tuple[float, dict[str, str]]] = field(default_factory=dict)

    def poll(self) -> None:
        now = time.monotonic()
        for labels in self.prom.firing():
            if labels["alertname"] not in MODEL_ALERTS:
                continue
            key = (labels.get("job", ""), describe(labels) + "@" + labels.get("window", ""))
            self.first.setdefault(key, (now, labels))

    def fired(self, job: str, origin: float) -> dict[str, tuple[float, dict[str, str]]]:
        """alert/feature/statistic@window -> (seconds after `origin`, labels)."""
        return {k[1]: (t - origin, labels) for k, (t, labels) in self.first.items()
                if k[0] == job}


# -- databases, topics, processes -----------------------------------------------------------
@contextlib.contextmanager
def database(name: str) -> Iterator[PostgresSettings]:
    """A fresh database with the sink's schema (its own migrations); dropped afterwards."""
    from sink.migrate import migrate

    with scratch_database(name) as pg:
        migrate(pg.conninfo())
        yield pg


@contextlib.contextmanager
def topics(prefix: str) -> Iterator[KafkaSettings]:
    from spoiler_common.kafka import admin_client
    from spoiler_common.topics import ensure_topics, topic_specs

    kafka = KafkaSettings(topic_prefix=prefix)
    specs = topic_specs(prefix)
    admin = admin_client(kafka)
    ensure_topics(admin, specs)
    try:
        yield kafka
    finally:
        admin.delete_topics([s.name for s in specs], operation_timeout=30)


@contextlib.contextmanager
def own_prometheus(root: Path, targets: dict[str, list[str]], rules: Path) -> Iterator[
        OwnPrometheus]:
    prom = OwnPrometheus(root, free_port())
    try:
        prom.start(targets, rules)
        yield prom
    finally:
        prom.stop()


class Services:
    """The pipeline's services as `python -m` subprocesses, each in its own session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith("SPOILER_")}
        full.update(env, PYTHONUNBUFFERED="1")
        with (self.root / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", *args], cwd=REPO_ROOT, env=full, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self, name: str, chars: int = 3000) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-chars:]

    def check(self, *names: str) -> None:
        for name in names:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def distinct_ports(*names: str) -> dict[str, int]:
    """A free port per name, all different (the OS may hand out a just-freed port again)."""
    ports: dict[str, int] = {}
    while len(ports) < len(names):
        port = free_port()
        if port not in ports.values():
            ports[names[len(ports)]] = port
    return ports


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _wait(check: Callable[[], bool], timeout_s: float, what: str, services: Services,
          names: tuple[str, ...]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check(*names)
        if check():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {n} ---\n{services.tail(n, 1500)}" for n in names)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{tails}")


# -- the stable replay ----------------------------------------------------------------------
@dataclass
class StableResult:
    reviews: int
    labelled: int
    windows: tuple[str, ...]
    seconds: float
    false_alerts: dict[str, float]  # alert/feature/statistic@window -> first seen (s)
    # Largest statistic / threshold seen, per feature/statistic@window (alerts above 1).
    drift_peak: dict[str, float]
    # Smallest value - floor seen, per metric@window (alerts below 0).
    quality_margin: dict[str, float]
    # In the longest window once every label is in: estimate, realised and their gap.
    estimate: dict[str, float]


def _counts(pg: PostgresSettings) -> tuple[int, int]:
    with psycopg.connect(pg.conninfo()) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM predictions), "
                           "(SELECT count(*) FROM labels l JOIN predictions p "
                           "USING (review_id))").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _by(prom: OwnPrometheus, expr: str, key: Callable[[dict[str, str]], str]) -> dict[
        str, float]:
    """An instant query's values keyed by `key(labels)`."""
    out = {key(item["metric"]): round(float(item["value"][1]), 4) for item in prom.query(expr)}
    # A statistic of 0 against a threshold of 0 (a reference all in one bin) is 0/0: no ratio.
    return dict(sorted((k, v) for k, v in out.items() if math.isfinite(v)))


# What the results report of the estimate and realised quality: name -> metric.
QUALITY = {
    "accuracy": "spoiler_model_accuracy",
    "estimated_accuracy": "spoiler_model_estimated_accuracy",
    "gap": "spoiler_model_estimated_accuracy_error",
    "gap_limit": "spoiler_model_estimated_accuracy_error_limit",
    "floor": 'spoiler_model_quality_floor{metric="accuracy"}',
    "f1": "spoiler_model_f1",
    "estimated_f1": "spoiler_model_estimated_f1",
    "f1_gap": "spoiler_model_estimated_f1_error",
    "f1_gap_limit": "spoiler_model_estimated_f1_error_limit",
    "labelled": "spoiler_model_labelled",
}


def quality(prom: OwnPrometheus, window: str, job: str | None = None) -> dict[str, float]:
    """The window's QUALITY values now (absent ones left out)."""
    selector = f'window="{window}"' + (f', job="{job}"' if job else "")
    out = {}
    for name, metric in QUALITY.items():
        expr = (metric.replace("}", f", {selector}}}") if "{" in metric
                else f"{metric}{{{selector}}}")
        value = prom.value(expr)
        if value is not None:
            out[name] = round(value, 4)
    return out


def run_stable(bundle: Path, root: Path, *, reviews: int = 20_000, rate: float = 250.0,
               label_delay_s: float = 5.0, windows: tuple[str, ...] = ("20s", "60s"),
               seed: int = 3, timeout_s: float = 900.0,
               progress: Callable[[str], None] = print) -> StableResult:
    """Replay `reviews` undrifted generated reviews through the real pipeline."""
    root.mkdir(parents=True, exist_ok=True)
    uid = uuid.uuid4().hex[:10]
    longest = max(windows, key=parse_duration)
    services = Services(root)
    ports = distinct_ports("sink", "worker", "monitor")
    with contextlib.ExitStack() as stack:
        kafka = stack.enter_context(topics(f"proof{uid}."))
        pg = stack.enter_context(database(f"proof_{uid}"))
        stack.callback(services.stop_all)
        assert pg.password is not None
        env = {
            "SPOILER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SPOILER_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SPOILER_PG_HOST": pg.host, "SPOILER_PG_PORT": str(pg.port),
            "SPOILER_PG_DATABASE": pg.database, "SPOILER_PG_USER": pg.user,
            "SPOILER_PG_PASSWORD": pg.password.get_secret_value(),
            "SPOILER_BUNDLE_PATH": str(bundle),
        }
        # The monitor first: it binds its port before the others open Kafka connections,
        # whose ephemeral ports come from the same range as free ports.
        services.start("monitor", ["monitoring", "run"], {
            **env, "SPOILER_MONITOR_WINDOWS": ",".join(windows),
            "SPOILER_MONITOR_ALERT_WINDOW": longest, "SPOILER_MONITOR_INTERVAL_S": "1",
            "SPOILER_MONITOR_KAFKA_LAG": "false", "SPOILER_MONITOR_METRICS_HOST": "127.0.0.1",
            "SPOILER_MONITOR_METRICS_PORT": str(ports["monitor"])})
        _wait(lambda: _http_ok(f"http://127.0.0.1:{ports['monitor']}/metrics"), 60,
              "the monitor", services, ("monitor",))
        services.start("sink", ["sink", "run"], {
            **env, "SPOILER_SINK_GROUP_ID": f"proof-sink-{uid}",
            "SPOILER_SINK_METRICS_HOST": "127.0.0.1",
            "SPOILER_SINK_METRICS_PORT": str(ports["sink"])})
        services.start("worker", ["stream_processor", "worker"], {
            **env, "SPOILER_WORKER_APP_ID": f"proof-worker-{uid}",
            "SPOILER_WORKER_WEB_PORT": str(ports["worker"]),
            "SPOILER_WORKER_DATADIR": str(root / "worker-data")})
        names = ("sink", "worker", "monitor")
        _wait(lambda: _http_ok(f"http://127.0.0.1:{ports['sink']}/healthz"), 120, "the sink",
              services, names)
        _wait(lambda: _http_ok(f"http://127.0.0.1:{ports['worker']}/readyz"), 180,
              "the worker", services, names)
        prom = stack.enter_context(own_prometheus(
            root / "prometheus", {"monitoring": [f"127.0.0.1:{ports['monitor']}"]},
            render_rules(root / "rules", windows)))
        services.start("producer", [
            "producer", "stream", "--n", str(reviews), "--seed", str(seed), "--rate", str(rate),
            "--label-delay", str(label_delay_s), "--metrics-port", "0", "--json"], env)
        watch = Watch(prom)
        started = last_report = time.monotonic()
        predicted = labelled = 0
        while labelled < reviews:
            services.check(*names)
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"stable replay: {predicted}/{reviews} predicted and "
                                   f"{labelled} labelled after {timeout_s:.0f}s")
            watch.poll()
            predicted, labelled = _counts(pg)
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                elapsed = last_report - started
                speed = predicted / elapsed
                eta = (reviews - predicted) / speed if speed > 0 else float("inf")
                progress(f"stable replay: {predicted}/{reviews} predicted, {labelled} labelled, "
                         f"{speed:.0f}/s, ETA {eta:.0f}s, alerts so far {len(watch.first)}")
            time.sleep(1.0)
        # Every label is in: the windows hold the stream's last reviews; let the longest
        # window be evaluated through its `for:` before reading the results.
        settle = FOR_SHARE_OF_WINDOW * parse_duration(longest) + 4
        end = time.monotonic() + settle
        while time.monotonic() < end:
            watch.poll()
            time.sleep(1.0)
        estimate = quality(prom, longest)
        span = f"{int(time.monotonic() - watch.t0) + 5}s"
        ratio = ("spoiler:drift_statistic / on (feature, statistic, window, model_version, job, "
                 "instance) spoiler_drift_threshold")
        drift_peak = _by(prom, f"max by (feature, statistic, window) "
                               f"(max_over_time(({ratio})[{span}:1s]))",
                         lambda m: f"{m['feature']}/{m['statistic']}@{m['window']}")
        margins: dict[str, float] = {}
        for metric in ("accuracy", "f1"):
            margin = (f"spoiler_model_{metric} - on (model_version, window, job, instance) "
                      f'spoiler_model_quality_floor{{metric="{metric}"}}')
            found = _by(prom, f"min by (window) (min_over_time(({margin})[{span}:1s]))",
                        lambda m: m["window"])
            margins |= {f"{metric}@{w}": v for w, v in found.items()}
        for item in prom.query(f'max_over_time(ALERTS{{alertstate="firing"}}[{span}])'):
            labels = item["metric"]
            if labels.get("alertname") in MODEL_ALERTS:
                key = ("monitoring", describe(labels) + "@" + labels.get("window", ""))
                # Fired between two polls: seen only in Prometheus' own ALERTS series.
                watch.first.setdefault(key, (float("nan"), labels))
        seconds = time.monotonic() - started
        predicted, labelled = _counts(pg)
    return StableResult(
        reviews=predicted, labelled=labelled, windows=windows, seconds=round(seconds, 1),
        false_alerts={k: round(t, 1) for k, (t, _) in
                      watch.fired("monitoring", watch.t0).items()},
        drift_peak=drift_peak, quality_margin=margins, estimate=estimate)


# -- the drift scenarios --------------------------------------------------------------------
@dataclass
class ScenarioResult:
    scenario: str
    intent: Intent
    window_s: float
    # alert/feature/statistic@window -> seconds after the drift start when first seen
    # firing (negative: already during the baseline, i.e. a false alert).
    fired: dict[str, float]
    # Seconds from the drift start to the first intended alert that was not already
    # firing in the baseline (None: none fired).
    time_to_alert: float | None
    before: dict[str, float]  # estimate vs realised at the drift start (baseline window)
    after: dict[str, float]  # ... two windows later (a window of drifted reviews only)


INSERT_REVIEW = ("INSERT INTO reviews (review_id, movie_id, user_id, review_date, rating, "
                 "review_summary, review_text, text_words, produced_at) VALUES (%(review_id)s, "
                 "%(movie_id)s, %(user_id)s, %(review_date)s, %(rating)s, %(review_summary)s, "
                 "%(review_text)s, %(text_words)s, now())")
INSERT_PREDICTION = ("INSERT INTO predictions (review_id, model_version, model_name, "
                     "spoiler_probability, is_spoiler, threshold, produced_at, predicted_at, "
                     "inference_ms, queue_ms, end_to_end_ms, input_tokens, unknown_tokens) "
                     "VALUES (%(review_id)s, %(model_version)s, %(model_name)s, %(p)s, "
                     "%(p)s >= %(threshold)s, %(threshold)s, now(), now(), 5, 1, 50, "
                     "%(input_tokens)s, %(unknown_tokens)s)")
INSERT_LABEL = ("INSERT INTO labels (review_id, is_spoiler, labelled_at, source) VALUES "
                "(%(review_id)s, %(is_spoiler)s, now(), 'alert-proof')")


def scored_rows(model: Any, scenario: str, baseline: int, drifted: int, seed: int,
                cache: dict[str, tuple[float, int, int]]) -> list[dict[str, Any]]:
    """Generated reviews (drift from index `baseline` on), scored by the bundle."""
    from spoiler_common.model_runtime import model_text
    from synth import generate

    records = list(generate(baseline + drifted, seed=seed, scenario=scenario,
                            drift_at=baseline))
    texts = [model_text(r.get("review_summary"), r["review_text"]) for r in records]
    todo = sorted({t for t in texts if t not in cache})
    for start in range(0, len(todo), 64):
        chunk = todo[start:start + 64]
        pred = model.predict(chunk)
        for i, text in enumerate(chunk):
            cache[text] = (float(pred.probabilities[i]), int(pred.input_tokens[i]),
                           int(pred.unknown_tokens[i]))
    rows = []
    for i, (rec, text) in enumerate(zip(records, texts, strict=True)):
        p, tokens, unknown = cache[text]
        rows.append({
            "review_id": f"{scenario}-{i}", "movie_id": rec["movie_id"], "user_id": rec["user_id"],
            "review_date": rec["review_date"], "rating": rec.get("rating"),
            "review_summary": rec.get("review_summary") or "", "review_text": rec["review_text"],
            "text_words": len(rec["review_text"].split()), "p": p, "threshold": model.threshold,
            "model_version": model.version, "model_name": model.name, "input_tokens": tokens,
            "unknown_tokens": unknown, "is_spoiler": bool(rec["is_spoiler"]),
        })
    return rows


@dataclass
class Stream:
    scenario: str
    pg: PostgresSettings
    rows: list[dict[str, Any]]
    sent: int = 0
    labelled: int = 0


def feed(streams: list[Stream], until: int, stop: threading.Event, rate: float,
         label_delay_s: float) -> None:
    """Insert each stream's rows at `rate` per second stamped now(), labels `label_delay_s`
    later, up to row `until`."""
    conns = {s.scenario: psycopg.connect(s.pg.conninfo()) for s in streams}
    tick = 0.5
    per_tick = max(1, round(rate * tick))
    lag = round(rate * label_delay_s)
    try:
        while not stop.is_set() and any(s.sent < until for s in streams):
            started = time.monotonic()
            for s in streams:
                batch = s.rows[s.sent:min(s.sent + per_tick, until)]
                due = s.rows[s.labelled:max(s.labelled, s.sent + len(batch) - lag)]
                with conns[s.scenario].transaction(), conns[s.scenario].cursor() as cur:
                    if batch:
                        cur.executemany(INSERT_REVIEW, batch)
                        cur.executemany(INSERT_PREDICTION, batch)
                    if due:
                        cur.executemany(INSERT_LABEL, due)
                s.sent += len(batch)
                s.labelled += len(due)
            stop.wait(max(0.0, tick - (time.monotonic() - started)))
    finally:
        for conn in conns.values():
            conn.close()


def run_scenarios(bundle: Path, root: Path, *, scenarios: tuple[str, ...] = tuple(INTENDED),
                  window: str = "20s", rate: float = 40.0, label_delay_s: float = 3.0,
                  seed: int = 5, progress: Callable[[str], None] = print,
                  ) -> list[ScenarioResult]:
    """Each scenario after one window of baseline, watched for two windows."""
    from prometheus_client import start_http_server

    from monitoring.service import Monitor
    from monitoring.settings import MonitorSettings
    from spoiler_common.model_runtime import load_bundle

    root.mkdir(parents=True, exist_ok=True)
    window_s = parse_duration(window)
    baseline = round(rate * (window_s + label_delay_s + 2))
    drifted = round(rate * (2 * window_s + 4))
    model = load_bundle(bundle)
    cache: dict[str, tuple[float, int, int]] = {}
    progress(f"scenarios: scoring {len(scenarios)} x {baseline + drifted} generated reviews")
    rows = {s: scored_rows(model, s, baseline, drifted, seed, cache) for s in scenarios}
    uid = uuid.uuid4().hex[:10]
    settings = MonitorSettings(windows=[window], alert_window=window, interval_s=1.0,
                               bundle_path=bundle, kafka_lag=False,
                               metrics_host="127.0.0.1")
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        streams = [Stream(s, stack.enter_context(database(f"proof_{uid}_{s}")), rows[s])
                   for s in scenarios]
        ports = distinct_ports(*scenarios)
        threads = []
        for s in streams:
            monitor = Monitor(settings=settings, pg=s.pg, kafka=None)
            server, _ = start_http_server(ports[s.scenario], addr="127.0.0.1",
                                          registry=monitor.metrics.registry)
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            threads.append(threading.Thread(target=monitor.run_forever, args=(stop,),
                                            daemon=True))
        prom = stack.enter_context(own_prometheus(
            root / "prometheus", {s: [f"127.0.0.1:{p}"] for s, p in ports.items()},
            render_rules(root / "rules", window)))

        def join() -> None:
            stop.set()
            for t in threads:
                t.join(timeout=15)

        stack.callback(join)
        for t in threads:
            t.start()
        progress(f"scenarios: {window_s:.0f}s of baseline at {rate:g} reviews/s each")
        watch = Watch(prom)
        feeder = threading.Thread(target=feed, args=(streams, baseline, stop, rate,
                                                     label_delay_s), daemon=True)
        feeder.start()
        while feeder.is_alive():
            watch.poll()
            feeder.join(timeout=0.5)
        drift_start = time.monotonic()  # the next row inserted is drifted
        before = {s: quality(prom, window, s) for s in scenarios}
        feeder = threading.Thread(target=feed, args=(streams, baseline + drifted, stop, rate,
                                                     label_delay_s), daemon=True)
        feeder.start()
        progress(f"scenarios: drift started; watching two windows ({2 * window_s:.0f}s)")
        while time.monotonic() - drift_start < 2 * window_s + 2:
            watch.poll()
            time.sleep(0.5)
        after = {s: quality(prom, window, s) for s in scenarios}
        stop.set()
        feeder.join(timeout=15)
    results = []
    for name in scenarios:
        fired = watch.fired(name, drift_start)
        intended = [t for t, labels in fired.values()
                    if t >= 0 and alert_key(labels) in INTENDED[name].alerts]
        results.append(ScenarioResult(
            name, INTENDED[name], window_s, {k: round(t, 1) for k, (t, _) in fired.items()},
            round(min(intended), 1) if intended else None, before[name], after[name]))
    return results


# -- the docs table -------------------------------------------------------------------------
BEGIN, END = "<!-- alert-proof:begin -->", "<!-- alert-proof:end -->"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(manifest: BundleManifest, stable: StableResult | None,
          results: list[ScenarioResult]) -> str:
    """The results as Markdown (what `--write` puts between the docs' markers)."""
    metrics = manifest.metrics.as_floats() if manifest.metrics is not None else {}
    lines = [
        f"Bundle `{manifest.name}` `{manifest.version}` (format "
        f"{manifest.format_version}, test accuracy {_fmt(metrics.get('accuracy'))}, "
        f"ROC-AUC {_fmt(metrics.get('roc_auc'))}); generated "
        f"{time.strftime('%Y-%m-%d', time.gmtime())} by `make alert-proof`.", ""]
    if stable is not None:
        est = stable.estimate
        lines += [
            f"**Stable replay** through the real pipeline: {stable.reviews} reviews "
            f"({stable.labelled} labelled, labels delayed) in {stable.seconds:.0f} s, "
            f"windows {', '.join(stable.windows)}: **{len(stable.false_alerts)} drift or "
            f"quality alerts fired**"
            + (f" ({', '.join(sorted(stable.false_alerts))})" if stable.false_alerts else "")
            + ". Largest statistic / threshold seen: "
            f"{max(stable.drift_peak.values(), default=0):.2f}; smallest accuracy/F1 margin "
            "above the floor: "
            f"{min(stable.quality_margin.values(), default=float('nan')):.3f}. In the "
            f"{max(stable.windows, key=parse_duration)} window at the end: estimated accuracy "
            f"{_fmt(est.get('estimated_accuracy'))} vs realised {_fmt(est.get('accuracy'))} "
            f"(gap {_fmt(est.get('gap'))}, limit ±{_fmt(est.get('gap_limit'))}), "
            f"estimated F1 {_fmt(est.get('estimated_f1'))} vs realised {_fmt(est.get('f1'))} "
            f"(gap {_fmt(est.get('f1_gap'))}, limit ±{_fmt(est.get('f1_gap_limit'))}).", ""]
    if results:
        w = f"{results[0].window_s:.0f} s"
        lines += [
            f"**Scenarios** (window {w}, `for:` a quarter of it; the alert must fire within "
            "two windows of the drift start):", "",
            "| scenario | shift | intended alert | fired (s after drift start) | time to "
            "alert | accuracy before: estimated / realised (gap) | two windows later | gap "
            "limit | F1 gap later (limit) |",
            "|---|---|---|---|---|---|---|---|---|"]
        for r in results:
            intended = ", ".join(sorted(f"{a}/{f}" if f else a for a, f in r.intent.alerts))
            fired = ", ".join(f"{k.split('@')[0]} {t:.0f}" for k, t in
                              sorted(r.fired.items(), key=lambda kv: kv[1])) or "none"
            tta = r.time_to_alert

            def cell(s: dict[str, float]) -> str:
                return (f"{_fmt(s.get('estimated_accuracy'))} / {_fmt(s.get('accuracy'))} "
                        f"({_fmt(s.get('gap'), 3)})")

            lines.append(
                f"| {r.scenario} | {r.intent.shift} | {intended or 'none'} | {fired} | "
                f"{'–' if tta is None else f'{tta:.0f} s'} | {cell(r.before)} | {cell(r.after)} "
                f"| ±{_fmt(r.after.get('gap_limit'))} | {_fmt(r.after.get('f1_gap'))} "
                f"(±{_fmt(r.after.get('f1_gap_limit'))}) |")
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    doc = path.read_text("utf-8")
    if BEGIN not in doc or END not in doc:
        raise ValueError(f"{path} has no {BEGIN} ... {END} markers")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", doc), "utf-8")


# The proof's bundle: the tiny test recipe (training.tiny) on 2,000 training reviews, so
# that the model learns enough for concept shift to show (a model near chance loses
# almost nothing when labels flip) and its test split (~430) is large enough for
# floors tighter than the damage a drift does. ~2-4 minutes on 2 cores, built once.
PROOF_TRAIN_REVIEWS = 2_000
PROOF_VERSION = "proof-1"


def proof_bundle(cache: Path) -> Path:
    """The proof's bundle under `cache` (built unless one built by the same code is there)."""
    from training.tiny import cached_tiny_bundle

    return cached_tiny_bundle(cache, version=PROOF_VERSION, seed=0,
                              n_train=PROOF_TRAIN_REVIEWS)


def to_json(stable: StableResult | None, results: list[ScenarioResult]) -> str:
    return json.dumps({
        "stable": None if stable is None else vars(stable),
        "scenarios": [{"scenario": r.scenario, "shift": r.intent.shift,
                       "fired": r.fired, "time_to_alert": r.time_to_alert,
                       "before": r.before, "after": r.after} for r in results]}, indent=1)


__all__ = ["INTENDED", "MODEL_ALERTS", "ScenarioResult", "StableResult", "run_scenarios",
           "run_stable", "table", "write_docs"]
