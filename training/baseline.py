"""baseline: TF-IDF + logistic regression on the same split, same metrics, side by side."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from training.data import read_split
from training.metrics import classification_metrics, flat, tune_threshold

log = logging.getLogger(__name__)


def fit_predict(train_rows: list[dict[str, Any]], score_rows: list[list[dict[str, Any]]],
                seed: int = 42) -> list[np.ndarray]:
    """Fit on train; P(spoiler) for each list of rows in `score_rows`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True),
        LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=seed),
    )
    model.fit([r["text"] for r in train_rows], [r["label"] for r in train_rows])
    return [model.predict_proba([r["text"] for r in rows])[:, 1] for rows in score_rows]


def run(prepared: Path, out_dir: Path, seed: int = 42) -> dict[str, Any]:
    train, val, test = (read_split(prepared, s) for s in ("train", "validation", "test"))
    val_scores, test_scores = fit_predict(train, [val, test], seed)
    val_labels = np.asarray([r["label"] for r in val])
    test_labels = np.asarray([r["label"] for r in test])
    threshold = tune_threshold(val_labels, val_scores)
    result = {"model": "tfidf+logreg", "threshold": threshold,
              "test": classification_metrics(test_labels, test_scores, threshold),
              "validation": classification_metrics(val_labels, val_scores, threshold)}
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"threshold": threshold, "test": flat(result["test"]),
               "validation": flat(result["validation"])}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("Baseline test_roc_auc=%.4f test_f1_spoiler=%.4f", result["test"]["roc_auc"],
             result["test"]["f1_spoiler"])
    return result
