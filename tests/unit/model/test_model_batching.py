"""Length-aware batching and the graph gate's choice: pure logic, no model."""

from __future__ import annotations

import pytest

from spoiler_common.batching import ONE_PER_CALL, BatchPolicy, length_groups, padding_waste
from spoiler_common.exceptions import ModelBundleError
from training.export import choose_served, compare

pytestmark = pytest.mark.unit


def test_groups_cover_every_index_once_sorted_by_length() -> None:
    lengths = [50, 10, 12, 48, 11, 200, 49, 10]
    groups = length_groups(lengths, BatchPolicy(max_texts=8, max_padding_waste=0.2))
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    # Short, middle and long texts never share a call at a 20 % padding bound.
    assert [[lengths[i] for i in g] for g in groups] == [[10, 10, 11, 12], [48, 49, 50], [200]]


def test_every_group_respects_the_bounds() -> None:
    lengths = [(i * 37) % 300 + 5 for i in range(200)]
    policy = BatchPolicy(max_texts=6, max_padding_waste=0.1)
    groups = length_groups(lengths, policy)
    assert all(1 <= len(g) <= 6 for g in groups)
    assert all(padding_waste([lengths[i] for i in g]) <= 0.1 + 1e-12 for g in groups)
    assert sum(len(g) for g in groups) == 200


def test_equal_lengths_fill_groups_in_input_order() -> None:
    groups = length_groups([7] * 10, BatchPolicy(max_texts=4, max_padding_waste=0.0))
    assert groups == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_one_per_call_is_one_text_per_group() -> None:
    assert length_groups([3, 1, 2], ONE_PER_CALL) == [[1], [2], [0]]
    assert length_groups([], BatchPolicy()) == []


@pytest.mark.parametrize("kwargs", [{"max_texts": 0}, {"max_padding_waste": 1.0},
                                    {"max_padding_waste": -0.1}])
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ModelBundleError):
        BatchPolicy(**kwargs)  # type: ignore[arg-type]


def test_gate_serves_the_fastest_passing_variant() -> None:
    passed = {"passed": True}
    failed = {"passed": False}
    assert choose_served({"fp32": passed, "int8": failed, "fp32-fused": passed}) == "fp32-fused"
    assert choose_served({"fp32": passed, "int8": passed, "fp32-fused": passed}) == "int8"
    # A variant that fails is never served, however fast; fp32 is the floor.
    assert choose_served({"fp32": passed, "int8": failed, "int8-selective": failed}) == "fp32"


def test_compare_counts_label_flips_at_the_threshold() -> None:
    import numpy as np

    ref = np.array([0.1, 0.45, 0.47, 0.9])
    cand = np.array([0.1, 0.47, 0.45, 0.9])  # two texts cross 0.46
    result = compare(cand, ref, 0.46)
    assert result["label_agreement"] == 0.5
    assert result["max_abs_diff"] == pytest.approx(0.02)
    assert compare(ref, ref, 0.46)["label_agreement"] == 1.0
