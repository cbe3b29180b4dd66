"""The monitor computing from a real PostgreSQL (the sink's schema) and real Kafka lag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import TopicPartition

from monitoring import stats
from monitoring.service import Monitor
from monitoring.settings import MonitorSettings
from spoiler_common import drift
from spoiler_common.kafka import admin_client, consumer, producer
from spoiler_common.settings import KafkaSettings, PostgresSettings
from spoiler_common.topics import TopicSpec
from tests.integration.monitoring.conftest import reference_meta

pytestmark = pytest.mark.integration


def value(samples: list, name: str, **labels: str) -> float | None:
    found = [s.value for s in samples if s.name == name
             and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def make_monitor(pg: PostgresSettings, bundle: Path, **extra: object) -> Monitor:
    settings = MonitorSettings(windows=["5m", "1h"], alert_window="1h", bundle_path=bundle,
                               kafka_lag=False, **extra)  # type: ignore[arg-type]
    return Monitor(settings=settings, pg=pg, kafka=None)


def test_empty_database_reports_no_quality_statistics(monitor_pg: PostgresSettings,
                                                      reference_bundle: Path) -> None:
    samples = make_monitor(monitor_pg, reference_bundle).run_once()
    names = {s.name for s in samples}
    assert "spoiler_model_accuracy" not in names
    assert "spoiler_drift_psi" not in names
    assert "spoiler_pipeline_freshness_seconds" not in names
    assert value(samples, "spoiler_pipeline_reviews_stored", window="5m") == 0
    assert value(samples, "spoiler_model_reference_metric", metric="accuracy") == 0.9


def test_window_statistics_from_postgres(seed, monitor_pg: PostgresSettings,
                                         reference_bundle: Path) -> None:
    rng = np.random.default_rng(11)
    n = 120
    probs = np.round(rng.random(n), 3)
    actual = rng.random(n) < probs  # calibrated scores
    words = rng.integers(20, 400, n)
    words_arr = words.astype(float)
    ages = np.where(np.arange(n) < 80, 30.0, 1200.0)  # 80 in the 5m window, all in 1h
    reviews = [{"review_id": f"r{i}", "movie_id": "tt1", "user_id": "u",
                "review_date": "1 May 2018",
                "rating": int(1 + i % 10), "review_summary": "" if i % 4 == 0 else "ok",
                "review_text": "w " * int(words[i]), "text_words": int(words[i]),
                "age": float(ages[i]) + 2} for i in range(n)]
    preds = [{"review_id": f"r{i}", "model_version": "v1", "p": float(probs[i]),
              "threshold": 0.5, "age": float(ages[i]), "input_tokens": 100,
              "unknown_tokens": i % 3} for i in range(n)]
    labels = [{"review_id": f"r{i}", "is_spoiler": bool(actual[i]), "age": 10.0}
              for i in range(0, n, 2)]  # every other review labelled
    seed(reviews=reviews, predictions=preds, labels=labels, dead_letters=3)

    samples = make_monitor(monitor_pg, reference_bundle).run_once()

    in5 = ages < 300
    lab = (np.arange(n) % 2 == 0) & in5
    c = stats.confusion(actual[lab], probs[lab] >= 0.5)
    want = stats.classification_metrics(c)
    assert value(samples, "spoiler_model_predictions", window="5m") == 80
    assert value(samples, "spoiler_model_predictions", window="1h") == 120
    assert value(samples, "spoiler_model_labelled", window="5m") == 40
    assert value(samples, "spoiler_model_accuracy", window="5m") == pytest.approx(
        want["accuracy"])
    assert value(samples, "spoiler_model_f1", window="5m") == pytest.approx(want["f1"])
    assert value(samples, "spoiler_model_roc_auc", window="5m") == pytest.approx(
        stats.roc_auc(actual[lab], probs[lab]))
    assert value(samples, "spoiler_model_confusion", window="5m", cell="tp") == c.tp
    assert value(samples, "spoiler_model_estimated_accuracy", window="5m") == pytest.approx(
        stats.cbpe(probs[in5], probs[in5] >= 0.5).accuracy)
    # Drift by the shared definition, against the bundle's reference counts and threshold.
    ref = reference_meta()
    words = ref["reference"]["features"]["text_words"]
    current = drift.histogram(words_arr[in5], words["edges"])
    assert value(samples, "spoiler_drift_psi", window="5m",
                 feature="text_words") == pytest.approx(drift.psi(words["counts"], current))
    assert value(samples, "spoiler_drift_ks", window="5m",
                 feature="text_words") == pytest.approx(drift.ks_binned(words["counts"], current))
    curve = drift.SizeCurve.from_json(ref["drift_thresholds"]["sizes"],
                                      ref["drift_thresholds"]["features"]["text_words"]["psi"])
    assert value(samples, "spoiler_drift_threshold", window="5m", feature="text_words",
                 statistic="psi") == pytest.approx(curve.at(80))
    ratings = ref["reference"]["features"]["rating"]
    assert value(samples, "spoiler_drift_chi2", window="5m", feature="rating") == pytest.approx(
        drift.chi2(ratings["counts"], drift.histogram(1 + np.arange(n)[in5] % 10,
                                                      ratings["edges"])))
    assert value(samples, "spoiler_model_quality_floor", window="5m",
                 metric="accuracy") == pytest.approx(
        drift.SizeCurve.from_json([30, 100, 1000, 10000], [0.7, 0.8, 0.81, 0.81]).at(40))
    assert value(samples, "spoiler_input_mean", window="5m",
                 feature="empty_summary") == pytest.approx(0.25)
    # Labels arrived 10 s ago for 40 reviews produced 31 s and 20 produced 1201 s before now
    # (the prediction's produced_at): delays 21 s (x40) and 1191 s (x20).
    assert value(samples, "spoiler_model_label_delay_seconds", window="5m",
                 quantile="0.5") == pytest.approx(21, abs=0.5)
    assert value(samples, "spoiler_model_label_delay_seconds", window="5m",
                 quantile="0.95") == pytest.approx(1191, abs=0.5)
    assert value(samples, "spoiler_pipeline_dead_letter_ratio",
                 window="5m") == pytest.approx(3 / (120 + 3))
    freshness = value(samples, "spoiler_pipeline_freshness_seconds")
    assert freshness is not None and 29 <= freshness < 120
    # 80 scores are too few for 20 score bins (100 needed): absent in 5m, not 0; 1h has 120.
    assert value(samples, "spoiler_drift_psi", window="5m", feature="score") is None
    assert value(samples, "spoiler_drift_threshold", window="5m", feature="score",
                 statistic="psi") is None
    assert value(samples, "spoiler_drift_psi", window="1h", feature="score") is not None


def test_missing_schema_is_an_error_metric_not_a_crash(pg_settings: PostgresSettings,
                                                       reference_bundle: Path) -> None:
    monitor = make_monitor(pg_settings, reference_bundle)
    samples = monitor.run_once()
    assert "spoiler_model_predictions" not in {s.name for s in samples}
    errors = monitor.metrics.registry.get_sample_value("spoiler_monitor_errors_total",
                                                       {"stage": "postgres"})
    assert errors == 1


def test_consumer_lag_from_kafka(kafka_settings: KafkaSettings,
                                 topics: dict[str, TopicSpec], unique_id: str) -> None:
    reviews = topics["reviews"].name
    prod = producer(kafka_settings, "monitor-test")
    for i in range(10):
        prod.produce(reviews, key=b"k", value=f"{i}".encode(), partition=0)
    prod.flush(10)
    group = f"monitor-test-{unique_id}"
    cons = consumer(kafka_settings, group, "monitor-test")
    cons.commit(offsets=[TopicPartition(reviews, 0, 4)], asynchronous=False)
    cons.close()

    settings = MonitorSettings(kafka_lag=True, consumer_groups=[group], bundle_path=Path("/nope"))
    monitor = Monitor(settings=settings, pg=PostgresSettings(database="does_not_exist"),
                      kafka=kafka_settings, admin=admin_client(kafka_settings))
    samples = monitor.run_once()
    assert value(samples, "spoiler_kafka_consumer_lag", group=group, topic=reviews) == 6
