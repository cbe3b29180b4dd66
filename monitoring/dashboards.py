"""The Grafana dashboards, built as classic dashboard JSON (Grafana 11.2, schemaVersion 39).

`python -m monitoring build-dashboards` writes them to grafana/dashboards/; a test
checks the committed files equal this output, and another runs every query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 39  # Grafana 11.0-11.2
PROM = {"type": "prometheus", "uid": "spoiler-prometheus"}
PG = {"type": "grafana-postgresql-datasource", "uid": "spoiler-postgres"}
MV = 'model_version=~"$model_version"'
W = 'window="$window"'

Panel = dict[str, Any]


class Layout:
    """Places panels left to right on Grafana's 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.x = self.y = self.row_h = 0
        self.next_id = 1
        self.panels: list[Panel] = []

    def add(self, panel: Panel, w: int = 12, h: int = 8) -> None:
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)


def prom(expr: str, legend: str = "", instant: bool = False, ref: str = "A",
         table: bool = False) -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": PROM, "refId": ref, "expr": expr,
                              "legendFormat": legend or "__auto", "range": not instant,
                              "instant": instant}
    if table:
        target["format"] = "table"
    return target


def sql(query: str, fmt: str = "table", ref: str = "A") -> dict[str, Any]:
    return {"datasource": PG, "refId": ref, "rawQuery": True, "editorMode": "code",
            "format": fmt, "rawSql": " ".join(query.split())}


def _targets(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    return targets


def timeseries(title: str, targets: list[dict[str, Any]], unit: str = "short",
               thresholds: list[tuple[str, float | None]] | None = None,
               minmax: tuple[float | None, float | None] = (None, None),
               description: str = "") -> Panel:
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 2, "spanNulls": False}}
    if minmax[0] is not None:
        defaults["min"] = minmax[0]
    if minmax[1] is not None:
        defaults["max"] = minmax[1]
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": [
            {"color": c, "value": v} for c, v in thresholds]}
        defaults["custom"]["thresholdsStyle"] = {"mode": "line+area"}
    return {"type": "timeseries", "title": title, "description": description,
            "datasource": targets[0]["datasource"], "targets": _targets(targets),
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom",
                                   "calcs": ["lastNotNull"]},
                        "tooltip": {"mode": "multi", "sort": "none"}}}


def stat(title: str, targets: list[dict[str, Any]], unit: str = "short",
         thresholds: list[tuple[str, float | None]] | None = None,
         mappings: list[dict[str, Any]] | None = None, description: str = "") -> Panel:
    steps = thresholds or [("green", None)]
    return {"type": "stat", "title": title, "description": description,
            "datasource": targets[0]["datasource"], "targets": _targets(targets),
            "fieldConfig": {"defaults": {
                "unit": unit, "mappings": mappings or [],
                "thresholds": {"mode": "absolute",
                               "steps": [{"color": c, "value": v} for c, v in steps]}},
                "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                          "values": False},
                        "colorMode": "background", "graphMode": "none", "textMode": "auto"}}


def table(title: str, targets: list[dict[str, Any]], description: str = "") -> Panel:
    return {"type": "table", "title": title, "description": description,
            "datasource": targets[0]["datasource"], "targets": _targets(targets),
            "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {"showHeader": True, "cellHeight": "sm"}}


def barchart(title: str, targets: list[dict[str, Any]], description: str = "",
             transformations: list[dict[str, Any]] | None = None) -> Panel:
    return {"type": "barchart", "title": title, "description": description,
            "datasource": targets[0]["datasource"], "targets": _targets(targets),
            "transformations": transformations or [],
            "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0}, "overrides": []},
            "options": {"orientation": "vertical", "xTickLabelRotation": 0,
                        "legend": {"displayMode": "list", "placement": "bottom"},
                        "showValue": "never", "groupWidth": 0.8, "barWidth": 0.9}}


def bin_shares(title: str, feature: str, description: str = "") -> Panel:
    """Current window vs reference shares per reference bin, joined on `le`."""
    return barchart(title, [
        prom(f'max by (le) (spoiler_drift_bin_share{{feature="{feature}", {W}, {MV}}})',
             "current", instant=True, table=True),
        prom(f'max by (le) (spoiler_drift_reference_bin_share{{feature="{feature}"}})',
             "reference", instant=True, table=True),
    ], description, transformations=[
        {"id": "joinByField", "options": {"byField": "le", "mode": "outer"}},
        {"id": "organize", "options": {"excludeByName": {"Time 1": True, "Time 2": True},
                                       "renameByName": {"Value #A": "current",
                                                        "Value #B": "reference"}}},
        {"id": "sortBy", "options": {"sort": [{"field": "le"}]}},
    ])


def variables(window_default: str = "1h") -> dict[str, Any]:
    return {"list": [
        {"name": "model_version", "label": "Model version", "type": "query",
         "datasource": PROM, "query": {"query": "label_values(spoiler_model_predictions, "
                                                "model_version)", "refId": "mv"},
         "definition": "label_values(spoiler_model_predictions, model_version)",
         "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
         "sort": 1, "hide": 0},
        {"name": "window", "label": "Window", "type": "query", "datasource": PROM,
         "query": {"query": "label_values(spoiler_model_predictions, window)",
                   "refId": "w"},
         "definition": "label_values(spoiler_model_predictions, window)",
         "refresh": 2, "includeAll": False, "multi": False,
         "current": {"selected": True, "text": window_default, "value": window_default},
         "sort": 0, "hide": 0},
    ]}


ANNOTATIONS = {"list": [
    {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
     "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
     "name": "Annotations & Alerts", "type": "dashboard"},
    {"datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
     "iconColor": "orange", "name": "Model versions and drift",
     "target": {"type": "tags", "tags": ["spoiler-stream"], "matchAny": True, "limit": 100}},
]}


def dashboard(uid: str, title: str, description: str, layout: Layout) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["spoiler-stream"], "timezone": "browser", "editable": True,
        "graphTooltip": 1, "schemaVersion": SCHEMA_VERSION, "version": 1,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
        "annotations": ANNOTATIONS, "templating": variables(), "links": [
            {"type": "dashboards", "tags": ["spoiler-stream"], "asDropdown": False,
             "title": "spoiler-stream"}],
        "panels": layout.panels,
    }


UP_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "DOWN", "color": "red"}, "1": {"text": "UP", "color": "green"}}}]


def pipeline() -> dict[str, Any]:
    lay = Layout()
    lay.add(stat("Service health", [prom(
        'up{job=~"producer|stream_processor|sink|monitoring"}', "{{job}}", instant=True)],
        thresholds=[("red", None), ("green", 1)], mappings=UP_MAPPINGS,
        description="1 while Prometheus can scrape the service."), w=12, h=4)
    lay.add(stat("Newest prediction age", [prom(
        "spoiler_pipeline_freshness_seconds", "freshness")], unit="s",
        thresholds=[("green", None), ("orange", 120), ("red", 600)],
        description="Age of the newest prediction stored in PostgreSQL."), w=6, h=4)
    lay.add(stat("Monitor last run", [prom(
        "time() - spoiler_monitor_last_success_timestamp_seconds", "age")], unit="s",
        thresholds=[("green", None), ("red", 300)]), w=6, h=4)
    lay.add(timeseries("Throughput", [
        prom("spoiler:producer_sent:rate1m", "produced"),
        prom("spoiler:worker_messages_in:rate1m", "worker in"),
        prom("spoiler:worker_predictions:rate1m", "predictions"),
        prom('sum(spoiler:sink_rows_written:rate1m{table="predictions"})',
             "rows written (predictions)"),
    ], unit="reqps", description="Messages per second at each stage (1-minute rates)."))
    lay.add(timeseries("Consumer lag", [prom("sum by (group, topic) (spoiler_kafka_consumer_lag)",
                                             "{{group}} / {{topic}}")],
                       description="Messages not yet committed, from the Kafka admin API."))
    lay.add(timeseries("End-to-end latency (publish to prediction)", [
        prom("spoiler:worker_end_to_end_seconds:p50_5m", "p50"),
        prom("spoiler:worker_end_to_end_seconds:p95_5m", "p95"),
        prom("spoiler:worker_end_to_end_seconds:p99_5m", "p99"),
    ], unit="s", thresholds=[("transparent", None), ("red", 10)]))
    lay.add(timeseries("Model call time per batch (p99) and batch size", [
        prom("spoiler:worker_inference_seconds:p99_5m", "inference p99 (s)"),
        prom("sum(rate(spoiler_worker_batch_size_sum[5m])) / "
             "sum(rate(spoiler_worker_batch_size_count[5m]))", "mean batch size"),
    ]))
    lay.add(timeseries("Dead letters", [
        prom("spoiler:dead_letters:rate5m", "dead letters / s"),
        prom("sum by (service, reason) (spoiler_pipeline_dead_letters{window=\"$window\"})",
             "stored in window: {{service}} {{reason}}"),
    ], description="Rate from the services' counters; count stored in PostgreSQL per window."))
    lay.add(timeseries("Dead-letter ratio", [
        prom("spoiler_pipeline_dead_letter_ratio{window=\"$window\"}", "stored ratio ($window)"),
        prom("spoiler:dead_letter_ratio:rate5m", "worker ratio (5m)"),
    ], unit="percentunit", thresholds=[("transparent", None), ("red", 0.05)]))
    lay.add(timeseries("Sink write time (p99)", [prom(
        "histogram_quantile(0.99, sum by (le) (rate(spoiler_sink_write_seconds_bucket[5m])))",
        "p99")], unit="s"), w=12)
    lay.add(table("Latest dead letters (PostgreSQL)", [sql(
        """SELECT failed_at AS "time", service, reason, left(error, 160) AS error, source_topic,
        source_partition, source_offset FROM dead_letters ORDER BY id DESC LIMIT 50""")]),
        w=12)
    return dashboard("spoiler-pipeline", "spoiler-stream: Pipeline",
                     "Throughput, lag, latency, dead letters and service health.", lay)


def drift_ratio(title: str, selector: str, legend: str) -> Panel:
    """Each drift statistic divided by its threshold at the window's n: alerts above 1."""
    return timeseries(title, [prom(
        f"spoiler:drift_statistic{{{selector}}} / on (feature, statistic, window, "
        f"model_version, job, instance) spoiler_drift_threshold{{{selector}}}", legend)],
        thresholds=[("green", None), ("red", 1)], minmax=(0, None),
        description="Statistic / the value a same-size sample of the bundle's reference "
        "exceeds only 1% of the time (PSI and KS for ordered features, chi-squared for "
        "ratings and empty summaries). Above 1 for the alert's `for:` = InputDrift/ScoreDrift.")


def model() -> dict[str, Any]:
    lay = Layout()
    sel = f"{{{W}, {MV}}}"
    lay.add(timeseries("Accuracy and F1 on delayed labels, with their floors", [
        prom(f"spoiler_model_accuracy{sel}", "accuracy {{model_version}}"),
        prom(f"spoiler_model_f1{sel}", "F1 {{model_version}}"),
        prom(f'spoiler_model_quality_floor{{metric=~"accuracy|f1", {W}, {MV}}}',
             "floor {{metric}} {{model_version}}"),
    ], unit="percentunit", minmax=(0, 1),
        description="Floors: the bundle's test value minus z standard errors at the "
        "window's labelled n; below = ModelAccuracyBelowFloor / ModelF1BelowFloor. Absent "
        "while the window has too few labels (see docs/monitoring.md)."))
    lay.add(timeseries("Estimated (CBPE) vs realised accuracy", [
        prom(f"spoiler_model_estimated_accuracy{sel}", "estimated {{model_version}}"),
        prom(f"spoiler_model_accuracy{sel}", "realised {{model_version}}"),
        prom(f'spoiler_model_reference_metric{{metric="accuracy", {MV}}}',
             "test split {{model_version}}"),
        prom(f'spoiler_model_quality_floor{{metric="estimated_accuracy", {W}, {MV}}}',
             "estimate floor {{model_version}}"),
    ], unit="percentunit", minmax=(0, 1),
        description="The estimate needs no labels (the scores are calibrated); realised "
        "accuracy follows as labels arrive."))
    lay.add(stat("Confusion matrix (labelled predictions)", [prom(
        f"sum by (cell) (spoiler_model_confusion{sel})", "{{cell}}", instant=True)],
        description="tp/fp/tn/fn with spoiler as the positive class."), w=8, h=6)
    lay.add(timeseries("Precision, recall, ROC-AUC", [
        prom(f"spoiler_model_precision{sel}", "precision {{model_version}}"),
        prom(f"spoiler_model_recall{sel}", "recall {{model_version}}"),
        prom(f"spoiler_model_roc_auc{sel}", "ROC-AUC {{model_version}}"),
    ], unit="percentunit", minmax=(0, 1)), w=8, h=6)
    lay.add(timeseries("Estimate gap (estimated - realised) and its limit", [
        prom(f"spoiler_model_estimated_accuracy_error{sel}", "accuracy {{model_version}}"),
        prom(f"spoiler_model_estimated_f1_error{sel}", "F1 {{model_version}}"),
        prom(f"spoiler_model_estimated_accuracy_error_limit{sel}", "+limit {{model_version}}"),
        prom(f"-spoiler_model_estimated_accuracy_error_limit{sel}", "-limit {{model_version}}"),
    ], unit="percentunit", description="Outside the limit (calibration error + sampling) "
        "= AccuracyEstimateOff: concept shift, which only labels reveal."), w=8, h=6)
    lay.add(timeseries("Score drift (vs validation) and thresholds at the window's n", [
        prom(f'spoiler_drift_psi{{feature="score", {W}, {MV}}}', "PSI {{model_version}}"),
        prom(f'spoiler_drift_ks{{feature="score", {W}, {MV}}}', "KS {{model_version}}"),
        prom(f'spoiler_drift_threshold{{feature="score", {W}, {MV}}}',
             "threshold {{statistic}} {{model_version}}"),
    ], minmax=(0, None)))
    lay.add(drift_ratio("Input drift (statistic / threshold per feature)",
                        f'feature!="score", {W}, {MV}',
                        "{{feature}} {{statistic}} {{model_version}}"))
    lay.add(bin_shares("Score histogram: window vs validation reference", "score"))
    lay.add(timeseries("Spoiler density: predicted vs actual vs training", [
        prom(f"spoiler_model_predicted_spoiler_ratio{sel}", "predicted {{model_version}}"),
        prom(f"spoiler_model_actual_spoiler_ratio{sel}", "actual {{model_version}}"),
        prom(f"spoiler_model_training_spoiler_rate{{{MV}}}", "training {{model_version}}"),
        prom(f"spoiler_model_expected_predicted_spoiler_ratio{{{MV}}}",
             "predicted on test split {{model_version}}"),
    ], unit="percentunit", minmax=(0, 1)))
    lay.add(timeseries("Label delay", [prom(
        f"spoiler_model_label_delay_seconds{sel}", "q{{quantile}} {{model_version}}")],
        unit="s"), w=8)
    lay.add(timeseries("Labelled fraction", [prom(
        f"spoiler_model_labelled_fraction{sel}", "{{model_version}}")],
        unit="percentunit", minmax=(0, 1)), w=8)
    lay.add(timeseries("Predictions and labels in window", [
        prom(f"spoiler_model_predictions{sel}", "predictions {{model_version}}"),
        prom(f"spoiler_model_labelled{sel}", "labelled {{model_version}}"),
    ]), w=8)
    lay.add(timeseries("Live score distribution (worker histogram, share per bucket)", [prom(
        "sum by (le) (rate(spoiler_worker_score_bucket[5m])) / ignoring (le) group_left "
        "sum(rate(spoiler_worker_score_count[5m]))", "le {{le}}")], unit="percentunit"), w=24)
    challenger_panels(lay)
    return dashboard("spoiler-model", "spoiler-stream: Model quality and drift",
                     "Accuracy on delayed labels, the label-free estimate, score and input "
                     "drift, per model version and window.", lay)


VERDICT_MAPPINGS = [{"type": "value", "options": {
    "1": {"text": "challenger better", "color": "green"},
    "0": {"text": "no significant difference", "color": "blue"},
    "-1": {"text": "challenger worse", "color": "red"}}}]


def challenger_panels(lay: Layout) -> None:
    """Champion vs challenger (shadow scoring, monitoring/comparison.py), side by side.

    Kept in one function so the panels move as a unit (e.g. to another dashboard
    builder). Series exist only with a challenger and enough labelled reviews.
    """
    sel = f'{W}, champion_version=~"$model_version"'
    lay.add(timeseries("Champion vs challenger on the same labelled reviews", [
        prom(f"spoiler_comparison_accuracy{{{sel}}}",
             "accuracy {{role}} ({{champion_version}} vs {{challenger_version}})"),
        prom(f"spoiler_comparison_f1{{{sel}}}", "F1 {{role}}"),
        prom(f"spoiler_comparison_roc_auc{{{sel}}}", "ROC-AUC {{role}}"),
    ], unit="percentunit", minmax=(0, 1),
        description="Both models on the reviews both scored that have a label (role = "
        "champion: the served model; challenger: scored in shadow). Absent below "
        "SPOILER_MONITOR_MIN_COMPARISON_LABELS labelled reviews."), w=10)
    lay.add(timeseries("Challenger − champion, with confidence interval", [
        prom(f"spoiler_comparison_difference{{{sel}}}", "{{metric}}"),
        prom(f"spoiler_comparison_difference_low{{{sel}}}", "{{metric}} low"),
        prom(f"spoiler_comparison_difference_high{{{sel}}}", "{{metric}} high"),
    ], unit="percentunit", thresholds=[("red", None), ("green", 0)],
        description="Paired-bootstrap interval (1 - alpha) of each difference: above 0 "
        "throughout = the challenger is better on that metric."), w=8)
    lay.add(stat("Verdict (McNemar), p-value, agreement, labels", [
        prom(f"spoiler_comparison_verdict{{{sel}}}", "verdict", instant=True),
        prom(f"spoiler_comparison_mcnemar_p_value{{{sel}}}", "McNemar p", instant=True),
        prom(f"spoiler_comparison_agreement{{{sel}}}", "agreement", instant=True),
        prom(f"spoiler_comparison_labelled{{{sel}}}", "labelled reviews", instant=True),
    ], mappings=VERDICT_MAPPINGS, description="Verdict: McNemar's test of equal accuracy at "
        "SPOILER_MONITOR_COMPARISON_ALPHA (alerts ChallengerBetter / ChallengerWorse when it "
        "holds 15 minutes on the alert window); agreement: share labelled alike."), w=6)


def data() -> dict[str, Any]:
    lay = Layout()
    lay.add(timeseries("Mean review length (words)", [prom(
        f'spoiler_input_mean{{feature="text_words", {W}, {MV}}}', "{{model_version}}")]))
    lay.add(bin_shares("Review length: window vs training reference", "text_words"))
    lay.add(bin_shares("Ratings: window vs training reference", "rating"))
    lay.add(timeseries("Unknown-token share and empty summaries", [
        prom(f'spoiler_input_mean{{feature="unknown_token_share", {W}, {MV}}}',
             "unknown-token share {{model_version}}"),
        prom(f'spoiler_input_mean{{feature="empty_summary", {W}, {MV}}}',
             "empty-summary share {{model_version}}"),
    ], unit="percentunit", minmax=(0, None)))
    lay.add(drift_ratio("Input drift (statistic / threshold)", f'feature!="score", {W}, {MV}',
                        "{{feature}} {{statistic}}"))
    lay.add(timeseries("Reviews stored per minute (PostgreSQL)", [sql(
        """SELECT $__timeGroupAlias(stored_at, '1m'), count(*) AS reviews FROM reviews
        WHERE $__timeFilter(stored_at) GROUP BY 1 ORDER BY 1""", fmt="time_series")]))
    lay.add(table("Spoiler share by rating (PostgreSQL, time range)", [sql(
        """SELECT rating, count(*) AS reviews,
        round(avg(predicted_spoiler::int)::numeric, 3) AS predicted_share,
        round(avg(actual_spoiler::int)::numeric, 3) AS actual_share
        FROM review_outcomes WHERE $__timeFilter(predicted_at)
        AND model_version ~ '^(${model_version:regex})$'
        GROUP BY rating ORDER BY rating NULLS LAST""")]), w=8)
    lay.add(table("Recent reviews with predictions (PostgreSQL)", [sql(
        """SELECT predicted_at AS "time", review_id, movie_id, rating, text_words,
        left(review_summary, 80) AS summary, model_version,
        round(spoiler_probability::numeric, 3) AS p_spoiler, predicted_spoiler,
        actual_spoiler, round(end_to_end_ms::numeric) AS end_to_end_ms
        FROM review_outcomes WHERE model_version ~ '^(${model_version:regex})$'
        ORDER BY predicted_at DESC LIMIT 100""")]), w=16, h=10)
    return dashboard("spoiler-data", "spoiler-stream: Data",
                     "Review length, ratings, unknown tokens and recent reviews.", lay)


BUILDERS = {"pipeline": pipeline, "model": model, "data": data}


def build() -> dict[str, dict[str, Any]]:
    """File stem -> dashboard JSON."""
    return {name: fn() for name, fn in BUILDERS.items()}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, board in build().items():
        path = directory / f"{name}.json"
        path.write_text(render(board), "utf-8")
        out.append(path)
    return out


__all__ = ["PG", "PROM", "SCHEMA_VERSION", "build", "render", "write"]


# -- checks used by the tests (and handy after editing a dashboard by hand) --------
PROMQL_WORDS = {
    "sum", "by", "max", "min", "avg", "rate", "increase", "histogram_quantile", "or", "and",
    "on", "ignoring", "group_left", "group_right", "time", "vector", "abs", "deriv",
    "label_values", "count", "without", "le", "bool", "unless", "offset",
}


def targets_of(board: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(panel title, panel, target) for every query of every panel."""
    return [(p.get("title", ""), p, t) for p in board.get("panels", [])
            for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (identifiers not followed by '(')."""
    import re

    no_strings = re.sub(r'"[^"]*"', '""', expr)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_strings)
    no_labels = re.sub(r"\{[^}]*\}", "{}", no_ranges)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", no_labels):
        word = m.group(0)
        rest = no_labels[m.end():].lstrip()
        if word in PROMQL_WORDS or rest.startswith("("):
            continue
        before = no_labels[:m.start()].rstrip()
        if before.endswith(("by (", "on (", "ignoring (", "without (", "group_left (")):
            continue
        names.add(word)
    return names


def lint(board: dict[str, Any], datasource_uids: set[str], metrics: set[str]) -> list[str]:
    """Problems: unknown datasource uids, unknown metrics, panels without queries."""
    problems = []
    allowed = datasource_uids | {"-- Grafana --"}
    refs = [("templating", v.get("datasource") or {}) for v in board["templating"]["list"]]
    for title, panel, target in targets_of(board):
        refs += [(title, panel.get("datasource") or {}), (title, target.get("datasource") or {})]
        if "expr" in target:
            import re
            # by (...) clauses hold label names, not metrics
            expr = re.sub(r"\b(by|on|ignoring|without|group_left|group_right)\s*\([^)]*\)", "",
                          target["expr"])
            for name in metric_names(expr) - metrics:
                problems.append(f"{board['uid']}/{title}: unknown metric {name}")
    for title, ref in refs:
        if ref.get("uid") not in allowed:
            problems.append(f"{board['uid']}/{title}: unknown datasource uid {ref.get('uid')}")
    for panel in board.get("panels", []):
        if not panel.get("targets"):
            problems.append(f"{board['uid']}/{panel.get('title')}: no queries")
    return problems
