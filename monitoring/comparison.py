"""Champion vs challenger per window, on the same labelled reviews (shadow scoring).

The worker scores a challenger in shadow (SPOILER_WORKER_CHALLENGER_PATH); the
sink stores its predictions with ``role = 'challenger'`` beside the champion's.
Here, per window and per (champion version, challenger version) pair, the
reviews that have both predictions and a label are compared with
``spoiler_common.comparison.compare_paired``: each model's accuracy, F1 and
ROC-AUC, the differences with paired-bootstrap intervals, McNemar's p-value,
agreement, and the verdict the alerts use.

A window is placed by the challenger's ``predicted_at``. Only pairs with at least
``min_comparison_labels`` labelled reviews are exported (the counts always are),
and at most ``comparison_max_rows`` of the newest are used: the bootstrap's cost
grows with n, and its intervals are already narrow there.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import psycopg

from monitoring.window import Sample
from spoiler_common.comparison import METRICS, PairedComparison, compare_paired

log = logging.getLogger(__name__)

# Newest first: a capped read keeps the most recent pairs.
PAIRS_SQL = """
SELECT c.model_version, s.model_version, extract(epoch FROM s.predicted_at)::float8,
       l.is_spoiler, c.spoiler_probability, c.threshold, s.spoiler_probability, s.threshold
FROM predictions s
JOIN predictions c ON c.review_id = s.review_id AND c.role = 'champion'
JOIN labels l ON l.review_id = s.review_id
WHERE s.role = 'challenger' AND s.predicted_at > now() - make_interval(secs => %(secs)s)
ORDER BY s.predicted_at DESC
LIMIT %(limit)s
"""
VERDICT_VALUE = {"better": 1.0, "none": 0.0, "worse": -1.0}


@dataclass
class PairRows:
    """Labelled reviews both models scored, for one (champion, challenger) version pair."""

    predicted_at: np.ndarray
    actual: np.ndarray  # bool
    champion_score: np.ndarray
    challenger_score: np.ndarray
    champion_threshold: float
    challenger_threshold: float


def read_pairs(
    conn: psycopg.Connection, seconds: float, limit: int
) -> dict[tuple[str, str], PairRows]:
    """The longest window's labelled pairs, newest first, grouped by version pair."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(PAIRS_SQL, {"secs": seconds, "limit": limit})
        records = cur.fetchall()
    grouped: dict[tuple[str, str], list[tuple[object, ...]]] = {}
    for rec in records:
        grouped.setdefault((str(rec[0]), str(rec[1])), []).append(rec[2:])
    out: dict[tuple[str, str], PairRows] = {}
    for pair, recs in grouped.items():
        cols = list(zip(*recs, strict=True))
        # A version's threshold is fixed in its bundle: the newest row's stands for all.
        out[pair] = PairRows(
            predicted_at=np.array(cols[0], dtype=float),
            actual=np.array(cols[1], dtype=bool),
            champion_score=np.array(cols[2], dtype=float),
            challenger_score=np.array(cols[4], dtype=float),
            champion_threshold=float(cols[3][0]),  # type: ignore[arg-type]
            challenger_threshold=float(cols[5][0]),  # type: ignore[arg-type]
        )
    return out


def samples(result: PairedComparison | None, n: int, labels: dict[str, str]) -> list[Sample]:
    """One window's comparison as Prometheus samples (the count only, below the minimum)."""
    out = [Sample("spoiler_comparison_labelled", labels, float(n))]
    if result is None:
        return out
    for metric in METRICS:
        for role, model in (("champion", result.champion), ("challenger", result.challenger)):
            value = getattr(model, metric)
            if math.isfinite(value):
                out.append(Sample(f"spoiler_comparison_{metric}", {**labels, "role": role},
                                  value))
        interval = result.diff(metric)
        for name, value in (("difference", interval.estimate),
                            ("difference_low", interval.low),
                            ("difference_high", interval.high)):
            # nan (a metric undefined on these rows) is absent, never 0.
            if math.isfinite(value):
                out.append(Sample(f"spoiler_comparison_{name}", {**labels, "metric": metric},
                                  value))
    out += [
        Sample("spoiler_comparison_agreement", labels, result.agreement),
        Sample("spoiler_comparison_mcnemar_p_value", labels, result.mcnemar_p),
        Sample("spoiler_comparison_discordant", {**labels, "right": "champion"},
               float(result.discordant_champion)),
        Sample("spoiler_comparison_discordant", {**labels, "right": "challenger"},
               float(result.discordant_challenger)),
        Sample("spoiler_comparison_verdict", labels, VERDICT_VALUE[result.verdict]),
    ]
    return out


@dataclass(frozen=True)
class ComparisonSettings:
    """What the comparison needs of MonitorSettings."""

    min_labels: int
    alpha: float
    draws: int
    max_rows: int


def compute(
    pairs: dict[tuple[str, str], PairRows],
    now: float,
    windows: dict[str, float],
    settings: ComparisonSettings,
) -> list[Sample]:
    """Every window's comparison of every version pair."""
    out: list[Sample] = []
    for (champion, challenger), rows in sorted(pairs.items()):
        for name, secs in windows.items():
            inside = rows.predicted_at > now - secs
            # Rows are newest first: the cap keeps the newest.
            index = np.flatnonzero(inside)[: settings.max_rows]
            labels = {"window": name, "champion_version": champion,
                      "challenger_version": challenger}
            result = compare_paired(
                rows.actual[index], rows.champion_score[index], rows.challenger_score[index],
                rows.champion_threshold, rows.challenger_threshold,
                min_labels=settings.min_labels, alpha=settings.alpha, draws=settings.draws,
            )
            out += samples(result, len(index), labels)
            if result is not None and result.verdict != "none":
                log.info("Challenger %s than the champion. window=%s champion_version=%s "
                         "challenger_version=%s n=%d accuracy_diff=%.4f mcnemar_p=%.3g",
                         result.verdict, name, champion, challenger, result.n,
                         result.accuracy_diff.estimate, result.mcnemar_p)
    return out


__all__ = ["ComparisonSettings", "PairRows", "compute", "read_pairs", "samples"]
