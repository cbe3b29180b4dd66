"""The dashboards' building blocks: queries and panel styles on grafana-foundation-sdk.

The SDK (Grafana's own generated builders, pinned to the Grafana that compose.yaml
runs) owns the JSON model; this module only holds the choices made once for every
panel of spoiler-stream: the two provisioned datasources, the legend and tooltip of a
time series, how a stat is coloured. `monitoring/dashboards.py` composes the boards.
"""

from __future__ import annotations

from typing import Self, TypeVar

from grafana_foundation_sdk.builders import barchart, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

# The uids grafana/provisioning/datasources/spoiler.yml gives the two datasources.
PROM = model.DataSourceRef(type_val="prometheus", uid="spoiler-prometheus")
PG = model.DataSourceRef(type_val="grafana-postgresql-datasource", uid="spoiler-postgres")

Steps = list[tuple[str, float | None]]
PanelBuilder = timeseries.Panel | stat.Panel | table.Panel | barchart.Panel
P = TypeVar("P", timeseries.Panel, stat.Panel, table.Panel, barchart.Panel)


class SqlQuery(cogvariants.Dataquery):
    """A raw-SQL target of Grafana's PostgreSQL datasource (the SDK has no type for it)."""

    def __init__(self, raw_sql: str, format_val: str) -> None:
        self.raw_sql = raw_sql
        self.format_val = format_val
        self.ref_id = "A"

    def to_json(self) -> dict[str, object]:
        return {"datasource": PG, "refId": self.ref_id, "rawQuery": True, "editorMode": "code",
                "format": self.format_val, "rawSql": self.raw_sql}


class Sql(cogbuilder.Builder[SqlQuery]):
    """Builder of a SqlQuery, shaped like the SDK's own query builders."""

    def __init__(self, query: str, format_val: str = "table") -> None:
        # One line in the JSON: Grafana's editor shows it as typed, the diff stays short.
        self._internal = SqlQuery(" ".join(query.split()), format_val)

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def build(self) -> SqlQuery:
        return self._internal


Query = prometheus.Dataquery | Sql


def prom(expr: str, legend: str = "", *, instant: bool = False,
         as_table: bool = False) -> prometheus.Dataquery:
    """A PromQL target; `legend` "" lets Grafana name the series (`__auto`)."""
    query = (prometheus.Dataquery().datasource(PROM).expr(expr)
             .legend_format(legend or "__auto"))
    query = query.instant() if instant else query.range()
    return query.format(PromQueryFormat.TABLE) if as_table else query


def sql(query: str, format_val: str = "table") -> Sql:
    """A raw-SQL target on PostgreSQL; `format_val` "time_series" for graphs."""
    return Sql(query, format_val)


def _steps(steps: Steps) -> builders.ThresholdsConfig:
    return (builders.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=value, color=color) for color, value in steps]))


def _targets(panel: P, title: str, description: str, queries: list[Query]) -> P:
    """Title, description, the first query's datasource, and refIds A, B, ... in order."""
    panel.title(title).description(description)
    first = queries[0]
    panel.datasource(PG if isinstance(first, Sql) else PROM)
    for i, query in enumerate(queries):
        panel.with_target(query.ref_id(chr(ord("A") + i)))
    return panel


def timeseries_panel(title: str, queries: list[Query], *, unit: str = "short",
                     thresholds: Steps | None = None, min_val: float | None = None,
                     max_val: float | None = None, description: str = "") -> timeseries.Panel:
    """Lines with a table legend (last value) and a shared tooltip; 12 x 8 unless resized."""
    panel = (timeseries.Panel().span(12).height(8).unit(unit).line_width(2).span_nulls(False)
             .legend(common_builders.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).calcs(["lastNotNull"]))
             .tooltip(common_builders.VizTooltipOptions()
                      .mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE)))
    if min_val is not None:
        panel.min(min_val)
    if max_val is not None:
        panel.max(max_val)
    if thresholds:
        panel.thresholds(_steps(thresholds)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig()
            .mode(common.GraphThresholdsStyleMode.LINE_AND_AREA))
    return _targets(panel, title, description, queries)


def stat_panel(title: str, queries: list[Query], *, unit: str = "short",
               thresholds: Steps | None = None, mappings: list[model.ValueMapping] | None = None,
               description: str = "") -> stat.Panel:
    """The last value on a background coloured by its threshold."""
    panel = (stat.Panel().span(12).height(8).unit(unit).mappings(mappings or [])
             .thresholds(_steps(thresholds or [("green", None)]))
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"])
                             .fields("").values(False))
             .color_mode(common.BigValueColorMode.BACKGROUND)
             .graph_mode(common.BigValueGraphMode.NONE)
             .text_mode(common.BigValueTextMode.AUTO))
    return _targets(panel, title, description, queries)


def table_panel(title: str, queries: list[Query], *, description: str = "") -> table.Panel:
    panel = (table.Panel().span(12).height(8).show_header(True)
             .cell_height(common.TableCellHeight.SM))
    return _targets(panel, title, description, queries)


def barchart_panel(title: str, queries: list[Query], *, description: str = "",
                   transformations: list[model.DataTransformerConfig] | None = None,
                   ) -> barchart.Panel:
    """Vertical bars of shares (0 to 100 %), one group per x value."""
    panel = (barchart.Panel().span(12).height(8).unit("percentunit").min(0)
             .transformations(transformations or [])
             .orientation(common.VizOrientation.VERTICAL).x_tick_label_rotation(0)
             .legend(common_builders.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM))
             .show_value(common.VisibilityMode.NEVER).group_width(0.8).bar_width(0.9))
    return _targets(panel, title, description, queries)


def transformation(id_val: str, **options: object) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=id_val, options=options)


def value_map(texts: dict[str, tuple[str, str]]) -> model.ValueMap:
    """Value -> (display text, colour)."""
    return model.ValueMap(options={
        value: model.ValueMappingResult(text=text, color=color)
        for value, (text, color) in texts.items()})


def label_variable(name: str, label: str, metric: str) -> builders.QueryVariable:
    """A variable holding the values of one label of `metric`, refreshed with the time range."""
    query = f"label_values({metric}, {name})"
    return (builders.QueryVariable(name).label(label).datasource(PROM)
            .query({"query": query, "refId": name})
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .hide(model.VariableHide.DONT_HIDE))


def board(uid: str, title: str, description: str, panels: list[PanelBuilder],
          ) -> builders.Dashboard:
    """A dashboard of the panels in order, numbered 1, 2, ... and laid out left to right.

    The SDK places each panel after the previous one and starts a new row once the
    24 columns are full, so the panels of each row must add up to 24.
    """
    dashboard = builders.Dashboard(title).uid(uid).description(description)
    for number, panel in enumerate(panels, start=1):
        dashboard.with_panel(panel.id(number))
    return dashboard


__all__ = ["PG", "PROM", "PanelBuilder", "Sql", "SqlQuery", "barchart_panel", "board",
           "label_variable", "prom", "sql", "stat_panel", "table_panel", "timeseries_panel",
           "transformation", "value_map"]
