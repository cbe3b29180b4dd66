"""The drift monitor's reference: histograms of validation-set scores and inputs.

Keys follow monitoring/reference.py: the score histogram at the top level
(`bins`, `counts`), then `text_words`, `rating`, `unknown_token_share` as
`{bins, counts}` and `empty_summary_share` as one number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCORE_BINS = [round(i / 20, 2) for i in range(21)]
WORD_BINS = [0, 25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 100000]
RATING_BINS = [0.5 + i for i in range(11)]
UNKNOWN_BINS = [0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 1.0]


def histogram(values: list[float] | np.ndarray, edges: list[float]) -> dict[str, list[Any]]:
    vals = np.clip(np.asarray(values, dtype=float), edges[0], edges[-1])
    counts, _ = np.histogram(vals, bins=edges)
    return {"bins": list(edges), "counts": [int(c) for c in counts]}


def build(rows: list[dict[str, Any]], scores: np.ndarray, input_tokens: list[int],
          unknown_tokens: list[int]) -> dict[str, Any]:
    """Reference block for bundle.json, from the validation split and its int8 scores."""
    words = [len(str(r.get("review_text") or r["text"]).split()) for r in rows]
    ratings = [r["rating"] for r in rows if isinstance(r.get("rating"), int)]
    unknown = [u / t if t else 0.0 for u, t in zip(unknown_tokens, input_tokens, strict=True)]
    empty_summary = float(np.mean([not str(r.get("review_summary") or "").strip()
                                   for r in rows]))
    block: dict[str, Any] = {
        "source": "validation",
        "n": len(rows),
        **histogram(scores, SCORE_BINS),
        "text_words": histogram(words, WORD_BINS),
        "unknown_token_share": histogram(unknown, UNKNOWN_BINS),
        "empty_summary_share": round(empty_summary, 6),
    }
    if ratings:  # the monitor rejects a null histogram; no ratings means no rating drift
        block["rating"] = histogram(ratings, RATING_BINS)
    return block
