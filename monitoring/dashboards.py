"""The three Grafana dashboards, built with grafana-foundation-sdk (Grafana 11.2).

`make dashboards` (= `python -m monitoring build-dashboards`) writes them to
grafana/dashboards/, which Grafana provisions; a test fails when the committed
files differ from this output, and another runs every query against real
Prometheus and PostgreSQL. Panel styles and queries: monitoring/panels.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from monitoring.panels import (
    PG,
    PanelBuilder,
    barchart_panel,
    board,
    label_variable,
    prom,
    sql,
    stat_panel,
    table_panel,
    timeseries_panel,
    transformation,
    value_map,
)

MV = 'model_version=~"$model_version"'
W = 'window="$window"'
TAG = "spoiler-stream"

# Every promotion and rollback (`python -m training promote|rollback`, the autopilot) is a
# row of model_promotions: the annotation reads it from the data, so it works without the
# Grafana API being reachable from the trainer.
PROMOTIONS_SQL = (
    "SELECT happened_at AS time, action || ': ' || coalesce(from_version, 'none') || ' -> ' "
    "|| to_version || CASE WHEN reason <> '' THEN ' (' || reason || ')' ELSE '' END AS text, "
    "'model-' || action AS tags FROM model_promotions WHERE $__timeFilter(happened_at) "
    "ORDER BY happened_at")


class SqlAnnotation(model.AnnotationQuery):
    """An annotation from a raw-SQL query of the PostgreSQL datasource (the SDK's
    AnnotationQuery has no rawSql field)."""

    def __init__(self, name: str, raw_sql: str, icon_color: str) -> None:
        super().__init__(name=name, datasource=PG, enable=True, icon_color=icon_color)
        self.raw_sql = raw_sql

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "rawQuery": True, "format": "table",
                "rawSql": self.raw_sql}


class SqlAnnotationBuilder(cogbuilder.Builder[model.AnnotationQuery]):
    """Builder of a SqlAnnotation, for `Dashboard.annotation`."""

    def __init__(self, name: str, raw_sql: str, icon_color: str) -> None:
        self._internal = SqlAnnotation(name, " ".join(raw_sql.split()), icon_color)

    def build(self) -> model.AnnotationQuery:
        return self._internal


def _finish(dashboard: builders.Dashboard, window_default: str = "1h") -> model.Dashboard:
    """What every board shares: tags, time, refresh, variables, annotations, links."""
    grafana = model.DataSourceRef(type_val="grafana", uid="-- Grafana --")
    return (dashboard.tags([TAG]).timezone("browser").editable()
            .tooltip(model.DashboardCursorSync.CROSSHAIR).version(1)
            .time("now-1h", "now").refresh("30s")
            .with_variable(label_variable("model_version", "Model version",
                                          "spoiler_model_predictions")
                           .multi(True).include_all(True).all_value(".*")
                           .current(model.VariableOption(selected=True, text=["All"],
                                                         value=["$__all"]))
                           .sort(model.VariableSort.ALPHABETICAL_ASC))
            .with_variable(label_variable("window", "Window", "spoiler_model_predictions")
                           .multi(False).include_all(False)
                           .current(model.VariableOption(selected=True, text=window_default,
                                                         value=window_default))
                           .sort(model.VariableSort.DISABLED))
            .annotation(builders.AnnotationQuery().name("Annotations & Alerts")
                        .datasource(grafana).built_in(1).enable(True).hide(True)
                        .icon_color("rgba(0, 211, 255, 1)").type("dashboard"))
            .annotation(builders.AnnotationQuery().name("Model versions and drift")
                        .datasource(grafana).enable(True).icon_color("orange")
                        .target(builders.AnnotationTarget().type("tags").tags([TAG])
                                .match_any(True).limit(100)))
            .annotation(SqlAnnotationBuilder("Model promotions", PROMOTIONS_SQL, "purple"))
            .link(builders.DashboardLink(TAG).type(model.DashboardLinkType.DASHBOARDS)
                  .tags([TAG]).as_dropdown(False))
            .build())


def bin_shares(title: str, feature: str) -> PanelBuilder:
    """Current window vs reference shares per reference bin, joined on `le`."""
    return barchart_panel(title, [
        prom(f'max by (le) (spoiler_drift_bin_share{{feature="{feature}", {W}, {MV}}})',
             "current", instant=True, as_table=True),
        prom(f'max by (le) (spoiler_drift_reference_bin_share{{feature="{feature}"}})',
             "reference", instant=True, as_table=True),
    ], transformations=[
        transformation("joinByField", byField="le", mode="outer"),
        transformation("organize", excludeByName={"Time 1": True, "Time 2": True},
                       renameByName={"Value #A": "current", "Value #B": "reference"}),
        transformation("sortBy", sort=[{"field": "le"}]),
    ])


def drift_ratio(title: str, selector: str, legend: str) -> PanelBuilder:
    """Each drift statistic divided by its threshold at the window's n: alerts above 1."""
    return timeseries_panel(title, [prom(
        f"spoiler:drift_statistic{{{selector}}} / on (feature, statistic, window, "
        f"model_version, job, instance) spoiler_drift_threshold{{{selector}}}", legend)],
        thresholds=[("green", None), ("red", 1)], min_val=0,
        description="Statistic / the value a same-size sample of the bundle's reference "
        "exceeds only 1% of the time (PSI and KS for ordered features, chi-squared for "
        "ratings and empty summaries). Above 1 for the alert's `for:` = InputDrift/ScoreDrift.")


def pipeline() -> model.Dashboard:
    up = value_map({"0": ("DOWN", "red"), "1": ("UP", "green")})
    return _finish(board("spoiler-pipeline", "spoiler-stream: Pipeline",
                         "Throughput, lag, latency, dead letters and service health.", [
        stat_panel("Service health", [prom(
            'up{job=~"producer|stream_processor|sink|monitoring"}', "{{job}}", instant=True)],
            thresholds=[("red", None), ("green", 1)], mappings=[up],
            description="1 while Prometheus can scrape the service.").height(4),
        stat_panel("Newest prediction age", [prom(
            "spoiler_pipeline_freshness_seconds", "freshness")], unit="s",
            thresholds=[("green", None), ("orange", 120), ("red", 600)],
            description="Age of the newest prediction stored in PostgreSQL.").span(6).height(4),
        stat_panel("Monitor last run", [prom(
            "time() - spoiler_monitor_last_success_timestamp_seconds", "age")], unit="s",
            thresholds=[("green", None), ("red", 300)]).span(6).height(4),
        timeseries_panel("Throughput", [
            prom("spoiler:producer_sent:rate1m", "produced"),
            prom("spoiler:worker_messages_in:rate1m", "worker in"),
            prom("spoiler:worker_predictions:rate1m", "predictions"),
            prom('sum(spoiler:sink_rows_written:rate1m{table="predictions"})',
                 "rows written (predictions)"),
        ], unit="reqps", description="Messages per second at each stage (1-minute rates)."),
        timeseries_panel("Consumer lag", [prom(
            "sum by (group, topic) (spoiler_kafka_consumer_lag)", "{{group}} / {{topic}}")],
            description="Messages not yet committed, from the Kafka admin API."),
        timeseries_panel("End-to-end latency (publish to prediction)", [
            prom("spoiler:worker_end_to_end_seconds:p50_5m", "p50"),
            prom("spoiler:worker_end_to_end_seconds:p95_5m", "p95"),
            prom("spoiler:worker_end_to_end_seconds:p99_5m", "p99"),
        ], unit="s", thresholds=[("transparent", None), ("red", 10)]),
        timeseries_panel("Model call time per batch (p99) and batch size", [
            prom("spoiler:worker_inference_seconds:p99_5m", "inference p99 (s)"),
            prom("sum(rate(spoiler_worker_batch_size_sum[5m])) / "
                 "sum(rate(spoiler_worker_batch_size_count[5m]))", "mean batch size"),
        ]),
        timeseries_panel("Dead letters", [
            prom("spoiler:dead_letters:rate5m", "dead letters / s"),
            prom(f"sum by (service, reason) (spoiler_pipeline_dead_letters{{{W}}})",
                 "stored in window: {{service}} {{reason}}"),
        ], description="Rate from the services' counters; count stored in PostgreSQL per "
            "window."),
        timeseries_panel("Dead-letter ratio", [
            prom(f"spoiler_pipeline_dead_letter_ratio{{{W}}}", "stored ratio ($window)"),
            prom("spoiler:dead_letter_ratio:rate5m", "worker ratio (5m)"),
        ], unit="percentunit", thresholds=[("transparent", None), ("red", 0.05)]),
        timeseries_panel("Sink write time (p99)", [prom(
            "histogram_quantile(0.99, sum by (le) (rate(spoiler_sink_write_seconds_bucket[5m])))",
            "p99")], unit="s"),
        table_panel("Latest dead letters (PostgreSQL)", [sql(
            """SELECT failed_at AS "time", service, reason, left(error, 160) AS error,
            source_topic, source_partition, source_offset FROM dead_letters
            ORDER BY id DESC LIMIT 50""")]),
    ]))


def model_quality() -> model.Dashboard:
    sel = f"{{{W}, {MV}}}"
    return _finish(board(
        "spoiler-model", "spoiler-stream: Model quality and drift",
        "Accuracy on delayed labels, the label-free estimate, score and input drift, per "
        "model version and window.", [
            timeseries_panel("Accuracy and F1 on delayed labels, with their floors", [
                prom(f"spoiler_model_accuracy{sel}", "accuracy {{model_version}}"),
                prom(f"spoiler_model_f1{sel}", "F1 {{model_version}}"),
                prom(f'spoiler_model_quality_floor{{metric=~"accuracy|f1", {W}, {MV}}}',
                     "floor {{metric}} {{model_version}}"),
            ], unit="percentunit", min_val=0, max_val=1,
                description="Floors: the bundle's test value minus z standard errors at the "
                "window's labelled n; below = ModelAccuracyBelowFloor / ModelF1BelowFloor. "
                "Absent while the window has too few labels (see docs/monitoring.md)."),
            timeseries_panel("Estimated (CBPE) vs realised accuracy", [
                prom(f"spoiler_model_estimated_accuracy{sel}", "estimated {{model_version}}"),
                prom(f"spoiler_model_accuracy{sel}", "realised {{model_version}}"),
                prom(f'spoiler_model_reference_metric{{metric="accuracy", {MV}}}',
                     "test split {{model_version}}"),
                prom(f'spoiler_model_quality_floor{{metric="estimated_accuracy", {W}, {MV}}}',
                     "estimate floor {{model_version}}"),
            ], unit="percentunit", min_val=0, max_val=1,
                description="The estimate needs no labels (the scores are calibrated); "
                "realised accuracy follows as labels arrive."),
            stat_panel("Confusion matrix (labelled predictions)", [prom(
                f"sum by (cell) (spoiler_model_confusion{sel})", "{{cell}}", instant=True)],
                description="tp/fp/tn/fn with spoiler as the positive class.").span(8).height(6),
            timeseries_panel("Precision, recall, ROC-AUC", [
                prom(f"spoiler_model_precision{sel}", "precision {{model_version}}"),
                prom(f"spoiler_model_recall{sel}", "recall {{model_version}}"),
                prom(f"spoiler_model_roc_auc{sel}", "ROC-AUC {{model_version}}"),
            ], unit="percentunit", min_val=0, max_val=1).span(8).height(6),
            timeseries_panel("Estimate gap (estimated - realised) and its limit", [
                prom(f"spoiler_model_estimated_accuracy_error{sel}", "accuracy {{model_version}}"),
                prom(f"spoiler_model_estimated_f1_error{sel}", "F1 {{model_version}}"),
                prom(f"spoiler_model_estimated_accuracy_error_limit{sel}",
                     "accuracy +limit {{model_version}}"),
                prom(f"-spoiler_model_estimated_accuracy_error_limit{sel}",
                     "accuracy -limit {{model_version}}"),
                prom(f"spoiler_model_estimated_f1_error_limit{sel}",
                     "F1 +limit {{model_version}}"),
                prom(f"-spoiler_model_estimated_f1_error_limit{sel}",
                     "F1 -limit {{model_version}}"),
            ], unit="percentunit", description="Each gap against its own limit (calibration "
                "error + sampling). Accuracy outside its limit = AccuracyEstimateOff: concept "
                "shift, which only labels reveal.",
            ).span(8).height(6),
            timeseries_panel("Score drift (vs validation) and thresholds at the window's n", [
                prom(f'spoiler_drift_psi{{feature="score", {W}, {MV}}}', "PSI {{model_version}}"),
                prom(f'spoiler_drift_ks{{feature="score", {W}, {MV}}}', "KS {{model_version}}"),
                prom(f'spoiler_drift_threshold{{feature="score", {W}, {MV}}}',
                     "threshold {{statistic}} {{model_version}}"),
            ], min_val=0),
            drift_ratio("Input drift (statistic / threshold per feature)",
                        f'feature!="score", {W}, {MV}',
                        "{{feature}} {{statistic}} {{model_version}}"),
            bin_shares("Score histogram: window vs validation reference", "score"),
            timeseries_panel("Spoiler density: predicted vs actual vs training", [
                prom(f"spoiler_model_predicted_spoiler_ratio{sel}", "predicted {{model_version}}"),
                prom(f"spoiler_model_actual_spoiler_ratio{sel}", "actual {{model_version}}"),
                prom(f"spoiler_model_training_spoiler_rate{{{MV}}}", "training {{model_version}}"),
                prom(f"spoiler_model_expected_predicted_spoiler_ratio{{{MV}}}",
                     "predicted on test split {{model_version}}"),
            ], unit="percentunit", min_val=0, max_val=1),
            timeseries_panel("Label delay", [prom(
                f"spoiler_model_label_delay_seconds{sel}", "q{{quantile}} {{model_version}}")],
                unit="s").span(8),
            timeseries_panel("Labelled fraction", [prom(
                f"spoiler_model_labelled_fraction{sel}", "{{model_version}}")],
                unit="percentunit", min_val=0, max_val=1).span(8),
            timeseries_panel("Predictions and labels in window", [
                prom(f"spoiler_model_predictions{sel}", "predictions {{model_version}}"),
                prom(f"spoiler_model_labelled{sel}", "labelled {{model_version}}"),
            ]).span(8),
            timeseries_panel("Live score distribution (worker histogram, share per bucket)", [prom(
                "sum by (le) (rate(spoiler_worker_score_bucket[5m])) / ignoring (le) group_left "
                "sum(rate(spoiler_worker_score_count[5m]))", "le {{le}}")],
                unit="percentunit").span(24),
            *challenger_panels(),
        ]))


def challenger_panels() -> list[PanelBuilder]:
    """Champion vs challenger (shadow scoring, monitoring/comparison.py), side by side.

    One function, so the panels move as a unit. Series exist only while a challenger
    runs in shadow and a window has enough labelled reviews both models scored.
    """
    sel = f'{W}, champion_version=~"$model_version"'
    verdict = value_map({"1": ("challenger better", "green"),
                         "0": ("no significant difference", "blue"),
                         "-1": ("challenger worse", "red")})
    return [
        timeseries_panel("Champion vs challenger on the same labelled reviews", [
            prom(f"spoiler_comparison_accuracy{{{sel}}}",
                 "accuracy {{role}} ({{champion_version}} vs {{challenger_version}})"),
            prom(f"spoiler_comparison_f1{{{sel}}}", "F1 {{role}}"),
            prom(f"spoiler_comparison_roc_auc{{{sel}}}", "ROC-AUC {{role}}"),
        ], unit="percentunit", min_val=0, max_val=1,
            description="Both models on the reviews both scored that have a label (role = "
            "champion: the served model; challenger: scored in shadow). Absent below "
            "SPOILER_MONITOR_MIN_COMPARISON_LABELS labelled reviews.").span(10),
        timeseries_panel("Challenger − champion, with confidence interval", [
            prom(f"spoiler_comparison_difference{{{sel}}}", "{{metric}}"),
            prom(f"spoiler_comparison_difference_low{{{sel}}}", "{{metric}} low"),
            prom(f"spoiler_comparison_difference_high{{{sel}}}", "{{metric}} high"),
        ], unit="percentunit", thresholds=[("red", None), ("green", 0)],
            description="Paired-bootstrap interval (1 - alpha) of each difference: above 0 "
            "throughout = the challenger is better on that metric.").span(8),
        stat_panel("Verdict (McNemar), p-value, agreement, labels", [
            prom(f"spoiler_comparison_verdict{{{sel}}}", "verdict", instant=True),
            prom(f"spoiler_comparison_mcnemar_p_value{{{sel}}}", "McNemar p", instant=True),
            prom(f"spoiler_comparison_agreement{{{sel}}}", "agreement", instant=True),
            prom(f"spoiler_comparison_labelled{{{sel}}}", "labelled reviews", instant=True),
        ], mappings=[verdict], description="Verdict: McNemar's test of equal accuracy at "
            "SPOILER_MONITOR_COMPARISON_ALPHA (alerts ChallengerBetter / ChallengerWorse when "
            "it holds 15 minutes on the alert window); agreement: share labelled alike.",
        ).span(6),
    ]


def data() -> model.Dashboard:
    return _finish(board(
        "spoiler-data", "spoiler-stream: Data",
        "Review length, ratings, unknown tokens and recent reviews.", [
            timeseries_panel("Mean review length (words)", [prom(
                f'spoiler_input_mean{{feature="text_words", {W}, {MV}}}',
                "{{model_version}}")]),
            bin_shares("Review length: window vs training reference", "text_words"),
            bin_shares("Ratings: window vs training reference", "rating"),
            timeseries_panel("Unknown-token share and empty summaries", [
                prom(f'spoiler_input_mean{{feature="unknown_token_share", {W}, {MV}}}',
                     "unknown-token share {{model_version}}"),
                prom(f'spoiler_input_mean{{feature="empty_summary", {W}, {MV}}}',
                     "empty-summary share {{model_version}}"),
            ], unit="percentunit", min_val=0),
            drift_ratio("Input drift (statistic / threshold)", f'feature!="score", {W}, {MV}',
                        "{{feature}} {{statistic}}"),
            timeseries_panel("Reviews stored per minute (PostgreSQL)", [sql(
                """SELECT $__timeGroupAlias(stored_at, '1m'), count(*) AS reviews FROM reviews
                WHERE $__timeFilter(stored_at) GROUP BY 1 ORDER BY 1""", "time_series")]),
            table_panel("Spoiler share by rating (PostgreSQL, time range)", [sql(
                """SELECT rating, count(*) AS reviews,
                round(avg(predicted_spoiler::int)::numeric, 3) AS predicted_share,
                round(avg(actual_spoiler::int)::numeric, 3) AS actual_share
                FROM review_outcomes WHERE $__timeFilter(predicted_at)
                AND model_version ~ '^(${model_version:regex})$'
                GROUP BY rating ORDER BY rating NULLS LAST""")]).span(8),
            table_panel("Recent reviews with predictions (PostgreSQL)", [sql(
                """SELECT predicted_at AS "time", review_id, movie_id, rating, text_words,
                left(review_summary, 80) AS summary, model_version,
                round(spoiler_probability::numeric, 3) AS p_spoiler, predicted_spoiler,
                actual_spoiler, round(end_to_end_ms::numeric) AS end_to_end_ms
                FROM review_outcomes WHERE model_version ~ '^(${model_version:regex})$'
                ORDER BY predicted_at DESC LIMIT 100""")]).span(16).height(10),
        ]))


# File stem in grafana/dashboards/ -> its builder.
BOARDS: dict[str, Callable[[], model.Dashboard]] = {
    "pipeline": pipeline, "model": model_quality, "data": data}


def build() -> dict[str, model.Dashboard]:
    """File stem -> dashboard."""
    return {name: make() for name, make in BOARDS.items()}


def render(dashboard: model.Dashboard) -> str:
    """The dashboard's JSON as committed (two-space indent, UTF-8, final newline)."""
    return json.dumps(dashboard, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, dashboard in build().items():
        path = directory / f"{name}.json"
        path.write_text(render(dashboard), "utf-8")
        out.append(path)
    return out


__all__ = ["BOARDS", "build", "render", "write"]
