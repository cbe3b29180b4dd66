"""The monitor scraped by a real (own) Prometheus with the real, rendered rule files."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import start_http_server

from devstack.procs import free_port
from monitoring.service import Monitor
from monitoring.settings import MonitorSettings
from spoiler_common.settings import PostgresSettings

pytestmark = pytest.mark.integration


def test_input_drift_in_postgres_fires_the_alert(seed: Any, monitor_pg: PostgresSettings,
                                                 reference_bundle: Path, own_prometheus: Any,
                                                 rendered_rules: Any, tmp_path: Path) -> None:
    n = 120
    # Every review is ~3000 words (reference: mostly under 200): text_words PSI is huge.
    seed(reviews=[{"review_id": f"r{i}", "movie_id": "tt1", "user_id": "u",
                   "review_date": "1 May 2018", "rating": 9, "review_summary": "ok",
                   "review_text": "long", "text_words": 3000, "age": 1.0} for i in range(n)],
         predictions=[{"review_id": f"r{i}", "model_version": "v1", "p": 0.1 + 0.8 * (i % 2),
                       "threshold": 0.5, "age": 0.0, "input_tokens": 512, "unknown_tokens": 0}
                      for i in range(n)])
    port = free_port()
    settings = MonitorSettings(windows=["10m"], alert_window="10m", interval_s=1.0,
                               bundle_path=reference_bundle, kafka_lag=False)
    monitor = Monitor(settings=settings, pg=monitor_pg, kafka=None)
    server, _ = start_http_server(port, addr="127.0.0.1", registry=monitor.metrics.registry)
    stop = threading.Event()
    loop = threading.Thread(target=monitor.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        own_prometheus.start({"monitoring": [f"127.0.0.1:{port}"]},
                             rendered_rules(tmp_path / "rules", "10m", "2s"))
        deadline = time.monotonic() + 60
        firing: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            firing = own_prometheus.firing()
            if any(a["alertname"] == "InputDrift" and a.get("feature") == "text_words"
                   for a in firing):
                break
            time.sleep(1)
        else:
            pytest.fail(f"InputDrift on text_words never fired; firing: {firing}")
        psi = own_prometheus.query('spoiler_drift_psi{feature="text_words"}')
        limit = own_prometheus.query(
            'spoiler_drift_threshold{feature="text_words", statistic="psi"}')
        assert float(psi[0]["value"][1]) > float(limit[0]["value"][1]) > 0
        assert own_prometheus.query('spoiler_model_predictions{window="10m"}')
        # No labels yet: quality series are absent, so no quality alert fired.
        assert not own_prometheus.query("spoiler_model_accuracy")
        assert not any(a["alertname"].startswith("ModelAccuracy") for a in firing)
    finally:
        stop.set()
        loop.join(timeout=10)
        server.shutdown()
        server.server_close()
