"""The SQL the sink sends: composed from constant column lists, data only as parameters."""

from __future__ import annotations

import pytest

from sink.db import STATEMENTS
from sink.tables import TABLES, label_row, prediction_row, review_row

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_sink_statements_cover_every_column(table: object) -> None:
    stmts = STATEMENTS[table.name]  # type: ignore[attr-defined]
    columns = table.columns  # type: ignore[attr-defined]
    insert_one = stmts.insert_one.as_string(None)
    assert insert_one.count("%s") == len(columns)
    assert "%s" not in stmts.upsert.as_string(None)
    assert "FORMAT BINARY" in stmts.copy.as_string(None)
    for column in columns:
        assert f'"{column}"' in stmts.upsert.as_string(None)


def test_sink_upserts_skip_identical_replays_and_dead_letters_never_update() -> None:
    assert "IS DISTINCT FROM" in STATEMENTS["reviews"].upsert.as_string(None)
    assert 'ON CONFLICT ("review_id", "model_version")' in \
        STATEMENTS["predictions"].upsert.as_string(None)
    assert STATEMENTS["dead_letters"].upsert.as_string(None).endswith("ON CONFLICT DO NOTHING")


def test_sink_row_functions_match_column_lists() -> None:
    from datetime import UTC, datetime

    from spoiler_common.contracts import LabelArrived, ReviewPublished, SpoilerPredicted

    t = datetime(2024, 1, 1, tzinfo=UTC)
    review = ReviewPublished(review_id="a", produced_at=t, review_date="d", movie_id="m",
                             user_id="u", review_text="x y")
    prediction = SpoilerPredicted(review_id="a", spoiler_probability=0.1, is_spoiler=False,
                                  threshold=0.5, model_name="n", model_version="v",
                                  produced_at=t, predicted_at=t, inference_ms=1.0, queue_ms=0.0,
                                  end_to_end_ms=1.0)
    label = LabelArrived(review_id="a", is_spoiler=True, labelled_at=t)
    for table, row, model in zip(TABLES, (review_row(review), prediction_row(prediction),
                                          label_row(label)), (review, prediction, label),
                                 strict=False):
        assert len(row) == len(table.columns) == len(table.types)
        fields = model.model_dump()
        named = dict(zip(table.columns, row, strict=True))
        for column, value in named.items():
            if column in fields:
                assert fields[column] == value, (table.name, column)
