"""Labels may come before their review and prediction or long after: same final rows."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

N = 200


def _strip(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [{**r, "review_id": r["review_id"].removeprefix(prefix)} for r in rows]


def test_sink_label_order_gives_identical_rows(sink_kit: Any) -> None:
    def msgs(prefix: str) -> dict[str, list[Any]]:
        return {
            "reviews": [sink_kit.review(f"{prefix}{i}", i) for i in range(N)],
            "predictions": [sink_kit.prediction(f"{prefix}{i}", i) for i in range(N)],
            "labels": [sink_kit.label(f"{prefix}{i}", i) for i in range(N)],
        }

    early, late = msgs("early-"), msgs("late-")
    with sink_kit.running():
        # Labels first, stored before any review exists; then predictions, then reviews.
        sink_kit.publish(early["labels"])
        sink_kit.wait_counts({"labels": N})
        sink_kit.publish(early["predictions"])
        sink_kit.wait_counts({"predictions": N})
        assert sink_kit.query("SELECT count(*) FROM review_outcomes") == [(0,)]
        sink_kit.publish(early["reviews"])
        # The usual order: review, prediction, and the label after both are stored.
        sink_kit.publish(late["reviews"] + late["predictions"])
        sink_kit.wait_counts({"reviews": 2 * N, "predictions": 2 * N})
        sink_kit.publish(late["labels"])
        sink_kit.wait_counts({"labels": 2 * N})

    for table in ("reviews", "predictions", "labels"):
        rows = sink_kit.rows(table)
        assert _strip([r for r in rows if r["review_id"].startswith("early-")], "early-") == \
            _strip([r for r in rows if r["review_id"].startswith("late-")], "late-"), table
    outcomes = sink_kit.query(
        "SELECT substr(review_id, position('-' in review_id) + 1) AS i, predicted_spoiler, "
        "actual_spoiler, model_version, spoiler_probability FROM review_outcomes ORDER BY 1, 2")
    assert len(outcomes) == 2 * N
    assert all(r[2] is not None and r[3] == "v1" for r in outcomes)
    assert outcomes[0::2] == outcomes[1::2]
