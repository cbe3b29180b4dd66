"""Length-aware batching: which texts share one onnxruntime call.

A call pads every text to the longest one in it, so batching texts of very
different lengths spends most of the call on padding. `length_groups` sorts
the texts by token length and cuts the sorted run into groups of at most
`max_texts` whose padded cells are at most `max_padding_waste` padding. The
caller scores each group in one call and writes each score back at its text's
own index, so the output keeps the input order (and with it the worker's
per-partition order).

The default is one text per call, by measurement (`benchmarks/batching.py`,
docs/performance.md): on the served MiniLM graph with one onnxruntime thread,
grouping cost 3-13 % more CPU per review at 128, 256 and 512 tokens on real and
generated texts, even at 128 tokens where 94 % of texts hit the cap (no padding
at all): one thread's GEMMs are already large enough at these lengths. Groups
are the setting to try with more threads per worker or another accelerator
(SPOILER_WORKER_MODEL_BATCH_TEXTS, SPOILER_WORKER_MODEL_PADDING_WASTE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spoiler_common.exceptions import ModelBundleError

DEFAULT_MAX_TEXTS = 1
DEFAULT_MAX_PADDING_WASTE = 0.10


@dataclass(frozen=True)
class BatchPolicy:
    """At most `max_texts` per call, at most `max_padding_waste` of its cells padding."""

    max_texts: int = DEFAULT_MAX_TEXTS
    max_padding_waste: float = DEFAULT_MAX_PADDING_WASTE

    def __post_init__(self) -> None:
        if self.max_texts < 1:
            raise ModelBundleError(f"max_texts must be at least 1, got {self.max_texts}")
        if not 0.0 <= self.max_padding_waste < 1.0:
            raise ModelBundleError(
                f"max_padding_waste must be in [0, 1), got {self.max_padding_waste}")


ONE_PER_CALL = BatchPolicy(max_texts=1, max_padding_waste=0.0)


def padding_waste(lengths: Sequence[int]) -> float:
    """Share of a padded call's cells that are padding."""
    if not lengths:
        return 0.0
    cells = len(lengths) * max(lengths)
    return 1.0 - sum(lengths) / cells if cells else 0.0


def length_groups(lengths: Sequence[int], policy: BatchPolicy) -> list[list[int]]:
    """Indices of `lengths` in groups to score together, shortest texts first.

    Ties keep input order (the sort is stable), so equal texts are grouped
    deterministically.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        if current:
            n = len(current) + 1
            # Sorted ascending: the new text is the longest of the group.
            waste = 1.0 - (total + lengths[i]) / (n * lengths[i]) if lengths[i] else 0.0
            if n > policy.max_texts or waste > policy.max_padding_waste:
                groups.append(current)
                current, total = [], 0
        current.append(i)
        total += lengths[i]
    if current:
        groups.append(current)
    return groups


__all__ = ["DEFAULT_MAX_PADDING_WASTE", "DEFAULT_MAX_TEXTS", "ONE_PER_CALL", "BatchPolicy",
           "length_groups", "padding_waste"]
