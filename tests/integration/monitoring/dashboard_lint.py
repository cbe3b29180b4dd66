"""Sanity checks on dashboard JSON that the tests run (and that help after a hand edit).

Grafana cannot run here: these catch what it would show as a broken panel (an
unknown datasource uid, a misspelt metric, a panel without queries) before the live
test runs every query against real Prometheus and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from typing import Any

from spoiler_common.settings import REPO_ROOT

DASHBOARD_DIR = REPO_ROOT / "grafana" / "dashboards"
Board = dict[str, Any]

PROMQL_WORDS = {
    "sum", "by", "max", "min", "avg", "rate", "increase", "histogram_quantile", "or", "and",
    "on", "ignoring", "group_left", "group_right", "time", "vector", "abs", "deriv",
    "label_values", "count", "without", "le", "bool", "unless", "offset",
}
# by (...) and friends hold label names, not metrics.
LABEL_LISTS = re.compile(r"\b(by|on|ignoring|without|group_left|group_right)\s*\([^)]*\)")


def committed() -> dict[str, Board]:
    """File stem -> the dashboard JSON Grafana provisions from grafana/dashboards/."""
    return {path.stem: json.loads(path.read_text("utf-8"))
            for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def targets_of(board: Board) -> list[tuple[str, Board, Board]]:
    """(panel title, panel, target) for every query of every panel."""
    return [(p.get("title", ""), p, t) for p in board.get("panels", [])
            for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (identifiers not followed by '(')."""
    no_strings = re.sub(r'"[^"]*"', '""', LABEL_LISTS.sub("", expr))
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_strings)
    no_labels = re.sub(r"\{[^}]*\}", "{}", no_ranges)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", no_labels):
        word = m.group(0)
        if word in PROMQL_WORDS or no_labels[m.end():].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def lint(board: Board, datasource_uids: set[str], metrics: set[str]) -> list[str]:
    """Problems: unknown datasource uids or metrics, panels without queries, a broken layout."""
    problems = []
    allowed = datasource_uids | {"-- Grafana --"}
    refs = [("templating", v.get("datasource") or {}) for v in board["templating"]["list"]]
    for title, panel, target in targets_of(board):
        refs += [(title, panel.get("datasource") or {}), (title, target.get("datasource") or {})]
        if "expr" in target:
            for name in sorted(metric_names(target["expr"]) - metrics):
                problems.append(f"{board['uid']}/{title}: unknown metric {name}")
    for title, ref in refs:
        if ref.get("uid") not in allowed:
            problems.append(f"{board['uid']}/{title}: unknown datasource uid {ref.get('uid')}")
    for panel in board.get("panels", []):
        if not panel.get("targets"):
            problems.append(f"{board['uid']}/{panel.get('title')}: no queries")
    return problems + layout_problems(board)


def layout_problems(board: Board) -> list[str]:
    """Panels off the 24-column grid, overlapping each other, or sharing an id."""
    problems = []
    panels = board.get("panels", [])
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        problems.append(f"{board['uid']}: panel ids repeat: {ids}")
    boxes = [(p.get("title"), p["gridPos"]) for p in panels]
    for i, (title, a) in enumerate(boxes):
        if a["x"] < 0 or a["x"] + a["w"] > 24:
            problems.append(f"{board['uid']}/{title}: off the 24-column grid {a}")
        for other, b in boxes[i + 1:]:
            if (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                    and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]):
                problems.append(f"{board['uid']}/{title}: overlaps {other}")
    return problems
