"""The runtime's calibration map and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from spoiler_common.bundle import calibration_of
from spoiler_common.calibration import Calibration, expected_calibration_error, reliability
from spoiler_common.exceptions import ModelBundleError

pytestmark = pytest.mark.unit


def test_platt_is_a_sigmoid_of_the_logit() -> None:
    cal = Calibration("platt", a=2.0, b=-1.0)
    raw = np.array([0.2, 0.5, 0.9])
    z = 2.0 * np.log(raw / (1 - raw)) - 1.0
    assert cal.apply(raw) == pytest.approx(1 / (1 + np.exp(-z)))
    assert Calibration().apply(raw) == pytest.approx(raw)


def test_isotonic_interpolates_and_stays_flat_outside() -> None:
    cal = Calibration("isotonic", x=(0.2, 0.8), y=(0.1, 0.7))
    assert cal.apply([0.0, 0.2, 0.5, 0.8, 1.0]) == pytest.approx([0.1, 0.1, 0.4, 0.7, 0.7])


def test_round_trip_through_bundle_json_params() -> None:
    for cal in (Calibration(), Calibration("platt", a=1.5, b=0.2),
                Calibration("isotonic", x=(0.0, 0.5, 1.0), y=(0.0, 0.3, 1.0))):
        meta = {"calibration": {"method": cal.method, "params": cal.params()}}
        assert calibration_of(meta) == cal
    assert calibration_of({}) == Calibration()


@pytest.mark.parametrize("block", [
    {"method": "magic"},
    {"method": "platt", "params": {"a": 1.0}},
    {"method": "isotonic", "params": {"x": [0.0, 1.0], "y": [0.5, 0.2]}},
    {"method": "isotonic", "params": {"x": [0.0, 1.0], "y": [0.0, 1.5]}},
    "platt",
])
def test_a_bad_calibration_block_is_a_bundle_error(block: object) -> None:
    with pytest.raises(ModelBundleError):
        calibration_of({"calibration": block})


def test_ece_and_reliability_by_hand() -> None:
    labels = [0, 0, 1, 1]
    probs = [0.05, 0.15, 0.85, 0.95]
    # Bins 0, 1, 8, 9 each hold one point: |0-0.05|, |0-0.15|, |1-0.85|, |1-0.95| averaged.
    assert expected_calibration_error(labels, probs) == pytest.approx(0.1)
    points = reliability(labels, probs)
    assert [p["n"] for p in points] == [1, 1, 1, 1]
    assert points[0]["observed"] == 0.0 and points[-1]["observed"] == 1.0
