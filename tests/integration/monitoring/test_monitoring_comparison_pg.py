"""Champion vs challenger from a real PostgreSQL (the sink's schema): equal to offline math."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest
from scipy.stats import binom, binomtest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from monitoring.service import Monitor
from monitoring.settings import MonitorSettings
from spoiler_common.comparison import compare_paired
from spoiler_common.settings import PostgresSettings

pytestmark = pytest.mark.integration
N = 300
CHAMP_T, CHALL_T = 0.5, 0.4


def seed_pairs(pg: PostgresSettings) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    y = rng.random(N) < 0.3
    champ = np.round(np.clip(0.35 + 0.3 * (y - 0.3) + rng.normal(0, 0.2, N), 0, 1), 3)
    chall = np.round(np.clip(0.3 + 0.6 * (y - 0.3) + rng.normal(0, 0.2, N), 0, 1), 3)
    # Distinct ages, newest first by index: rows 0-199 in the 5m window, all in 1h.
    ages = np.where(np.arange(N) < 200, 20 + 0.5 * np.arange(N), 1000 + np.arange(N))
    with psycopg.connect(pg.conninfo()) as conn, conn.cursor() as cur:
        for i in range(N + 20):
            cur.execute("INSERT INTO reviews (review_id, movie_id, user_id, review_date, "
                        "review_text, text_words, produced_at) VALUES (%s, 'tt', 'u', 'd', "
                        "'text', 1, now())", (f"r{i}",))
        rows = []
        for i in range(N):
            age = float(ages[i])
            rows.append((f"r{i}", "champ", "champion", float(champ[i]), CHAMP_T, age))
            rows.append((f"r{i}", "chall", "challenger", float(chall[i]), CHALL_T, age))
        for i in range(N, N + 20):  # unlabelled pairs and a champion-only review: not compared
            rows.append((f"r{i}", "champ", "champion", 0.9, CHAMP_T, 10.0))
            if i % 2:
                rows.append((f"r{i}", "chall", "challenger", 0.9, CHALL_T, 10.0))
        cur.executemany(
            "INSERT INTO predictions (review_id, model_version, model_name, role, "
            "spoiler_probability, is_spoiler, threshold, produced_at, predicted_at, "
            "inference_ms, queue_ms, end_to_end_ms) VALUES (%s, %s, 'tiny', %s, %s, %s >= %s, "
            "%s, now(), now() - make_interval(secs => %s), 1, 1, 1)",
            [(r, v, role, p, p, t, t, age) for r, v, role, p, t, age in rows])
        cur.executemany("INSERT INTO labels (review_id, is_spoiler, labelled_at, source) "
                        "VALUES (%s, %s, now(), 'test')",
                        [(f"r{i}", bool(y[i])) for i in range(N)])
    return {"y": y, "champ": champ, "chall": chall}


def value(samples: list, name: str, **labels: str) -> float | None:
    found = [s.value for s in samples if s.name == name
             and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def test_comparison_equals_offline_computation_on_the_same_rows(
    monitor_pg: PostgresSettings, reference_bundle: Path,
) -> None:
    data = seed_pairs(monitor_pg)
    settings = MonitorSettings(windows=["5m", "1h"], alert_window="1h",
                               bundle_path=reference_bundle, kafka_lag=False,
                               min_comparison_labels=250, comparison_draws=500)
    samples = Monitor(settings=settings, pg=monitor_pg, kafka=None).run_once()
    pair = {"champion_version": "champ", "challenger_version": "chall"}

    # 5m: 200 labelled pairs, below the minimum of 250: the count only.
    assert value(samples, "spoiler_comparison_labelled", window="5m", **pair) == 200
    assert value(samples, "spoiler_comparison_accuracy", window="5m", **pair,
                 role="champion") is None
    assert value(samples, "spoiler_comparison_verdict", window="5m", **pair) is None

    # 1h: all 300, compared; every number equals the offline computation.
    w = {"window": "1h", **pair}
    y, champ, chall = data["y"], data["champ"], data["chall"]
    assert value(samples, "spoiler_comparison_labelled", **w) == N
    for role, scores, t in (("champion", champ, CHAMP_T), ("challenger", chall, CHALL_T)):
        pred = scores >= t
        assert value(samples, "spoiler_comparison_accuracy", **w, role=role) == pytest.approx(
            accuracy_score(y, pred))
        assert value(samples, "spoiler_comparison_f1", **w, role=role) == pytest.approx(
            f1_score(y, pred))
        assert value(samples, "spoiler_comparison_roc_auc", **w, role=role) == pytest.approx(
            roc_auc_score(y, scores))
    right_champ, right_chall = (champ >= CHAMP_T) == y, (chall >= CHALL_T) == y
    b, c = int(np.sum(right_champ & ~right_chall)), int(np.sum(~right_champ & right_chall))
    assert value(samples, "spoiler_comparison_discordant", **w, right="champion") == b
    assert value(samples, "spoiler_comparison_discordant", **w, right="challenger") == c
    exact = binomtest(min(b, c), b + c, 0.5).pvalue
    assert value(samples, "spoiler_comparison_mcnemar_p_value", **w) == pytest.approx(
        exact - binom.pmf(min(b, c), b + c, 0.5))
    assert value(samples, "spoiler_comparison_agreement", **w) == pytest.approx(
        np.mean((champ >= CHAMP_T) == (chall >= CHALL_T)))
    assert value(samples, "spoiler_comparison_difference", **w, metric="roc_auc") == (
        pytest.approx(roc_auc_score(y, chall) - roc_auc_score(y, champ)))
    # The intervals: the same seeded bootstrap on the same rows, newest first.
    offline = compare_paired(y, champ, chall, CHAMP_T, CHALL_T, min_labels=250, draws=500)
    assert offline is not None
    for metric in ("accuracy", "f1", "roc_auc"):
        interval = offline.diff(metric)
        assert value(samples, "spoiler_comparison_difference_low", **w, metric=metric) == (
            pytest.approx(interval.low))
        assert value(samples, "spoiler_comparison_difference_high", **w, metric=metric) == (
            pytest.approx(interval.high))
    # The challenger separates the classes better: significantly more accurate.
    assert offline.verdict == "better"
    assert value(samples, "spoiler_comparison_verdict", **w) == 1.0

    # The challenger is no model version of the product in the per-version metrics.
    versions = {s.labels.get("model_version") for s in samples
                if s.name == "spoiler_model_predictions"}
    assert versions == {"champ"}
