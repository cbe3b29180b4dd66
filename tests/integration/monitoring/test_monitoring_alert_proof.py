"""The alert rules tell the truth on real services (issue 12, item 6).

Runs the same experiments as `make alert-proof` (devstack/alert_proof.py), which
writes the results table of docs/monitoring.md:

- a stable replay of 20,000 generated reviews through the real pipeline (producer ->
  Kafka -> worker with a real bundle, the tiny recipe on 2,000 reviews -> sink ->
  PostgreSQL -> monitor -> an own Prometheus with the real rules rendered to 20 s and
  60 s windows) fires no drift or quality alert in either window, and the label-free
  estimate holds;
- each drift scenario of the generator fires its intended alert within two windows
  of the drift start, nothing fires before it, and the estimate-vs-realised gap
  follows covariate shift and opens under concept shift.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import alert_proof
from spoiler_common import drift

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STABLE_REVIEWS = 20_000
WINDOWS = ("20s", "60s")


def test_stable_replay_fires_no_drift_or_quality_alert(proof_bundle: Path,
                                                       tmp_path: Path) -> None:
    result = alert_proof.run_stable(proof_bundle, tmp_path / "stable", reviews=STABLE_REVIEWS,
                                    windows=WINDOWS)
    print(alert_proof.to_json(result, []))
    assert result.reviews == STABLE_REVIEWS and result.labelled == STABLE_REVIEWS
    assert result.false_alerts == {}, f"false alerts on a stable stream: {result.false_alerts}"
    # Not vacuous: every statistic of every feature was compared with its threshold in
    # both windows, and the quality metrics with their floors.
    compared = {k.split("@")[0] for k in result.drift_peak}
    wanted = {f"{f.name}/{s}" for f in drift.FEATURES.values() for s in f.statistics}
    assert compared == wanted, sorted(compared)
    assert {k.split("@")[1] for k in result.drift_peak} == set(WINDOWS)
    assert set(result.quality_margin) == {f"{m}@{w}" for m in ("accuracy", "f1")
                                         for w in WINDOWS}
    # The label-free estimate holds on a stable stream: accuracy within 0.03 of realised
    # (issue 12) and each gap inside the limit the monitor itself claims. F1's limit is
    # wider than 0.03 for this bundle: its 429 test reviews pin the calibration's level only
    # to ±0.06, and this stream's spoiler share (0.265) is 3 standard errors above the
    # generator's 0.25; F1 feels both (docs/monitoring.md).
    est = result.estimate
    assert est["labelled"] > 5000, est
    assert abs(est["gap"]) <= min(0.03, est["gap_limit"]), est
    assert abs(est["f1_gap"]) <= est["f1_gap_limit"], est


def test_each_scenario_fires_its_alert_within_two_windows(proof_bundle: Path,
                                                          tmp_path: Path) -> None:
    results = {r.scenario: r for r in alert_proof.run_scenarios(proof_bundle,
                                                                tmp_path / "scenarios")}
    print(alert_proof.to_json(None, list(results.values())))
    assert set(results) == set(alert_proof.INTENDED)
    for r in results.values():
        before = {k: t for k, t in r.fired.items() if t < 0}
        assert not before, f"{r.scenario}: fired during the baseline: {before}"
    assert results["none"].fired == {}, results["none"].fired
    late = {s: (r.time_to_alert, r.fired) for s, r in results.items() if s != "none" and (
        r.time_to_alert is None or r.time_to_alert > 2 * r.window_s)}
    assert not late, f"intended alert missing or later than two windows: {late}"
    # Labels only: flipped labels move no input statistic.
    noise = results["label_noise"].fired
    assert not [k for k in noise if k.split("/")[0] in alert_proof.DRIFT_ALERTS], noise
    # Covariate shift: the estimate follows realised accuracy (the gap stays in its limit)
    # where the model uses what the input says about spoilers. Not asserted for
    # length_short: the tiny model under-uses length, so on short reviews its calibrated
    # scores run high and the gap sits at its limit (docs/monitoring.md says so).
    for s in ("length", "rating", "vocabulary"):
        after = results[s].after
        assert abs(after["gap"]) <= after["gap_limit"], (s, after)
        assert abs(after["f1_gap"]) <= after["f1_gap_limit"], (s, after)
    # Concept shift the inputs cannot show: the estimate stays, realised accuracy falls,
    # and the gap opens beyond its limit (that is AccuracyEstimateOff).
    after = results["label_noise"].after
    assert abs(after["gap"]) > after["gap_limit"], after
    assert after["accuracy"] < results["label_noise"].before["accuracy"] - 0.05, after
