"""baseline: the simple models the served one must beat, on the same split, same metrics.

- ``tfidf_logreg``: TF-IDF (1-2 grams) + logistic regression on the full text;
- ``text_length``: logistic regression on log(words) alone (on real reviews
  length alone is as good as TF-IDF, so a model must show it learnt more);
- ``majority``: always "not a spoiler" (what accuracy means without a model).

Thresholds are tuned on validation like the model's. evaluate reads the output
(``baselines.json``) and gates the model against ``tfidf_logreg``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.data import read_split
from training.metrics import classification_metrics, flat, tune_threshold

log = logging.getLogger(__name__)

BASELINES_FILE = "baselines.json"
Rows = list[dict[str, Any]]


def fit_predict(train_rows: Rows, score_rows: list[Rows], seed: int = 42) -> list[np.ndarray]:
    """TF-IDF + LR fitted on train; P(spoiler) for each list of rows in `score_rows`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True),
        LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=seed),
    )
    model.fit([r["text"] for r in train_rows], [r["label"] for r in train_rows])
    return [model.predict_proba([r["text"] for r in rows])[:, 1] for rows in score_rows]


def _log_words(rows: Rows) -> np.ndarray:
    return np.log1p([len(str(r.get("review_text") or r["text"]).split()) for r in rows]
                    ).reshape(-1, 1)


def length_fit_predict(train_rows: Rows, score_rows: list[Rows],
                       seed: int = 42) -> list[np.ndarray]:
    """Logistic regression on log(words of review_text); P(spoiler) per list of rows."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(class_weight="balanced", random_state=seed)
    model.fit(_log_words(train_rows), [r["label"] for r in train_rows])
    return [model.predict_proba(_log_words(rows))[:, 1] for rows in score_rows]


def majority_fit_predict(train_rows: Rows, score_rows: list[Rows],
                         seed: int = 42) -> list[np.ndarray]:
    """The training spoiler rate for every review (ranks nothing: ROC-AUC 0.5)."""
    rate = float(np.mean([r["label"] for r in train_rows]))
    return [np.full(len(rows), rate) for rows in score_rows]


BASELINES: dict[str, Callable[[Rows, list[Rows], int], list[np.ndarray]]] = {
    "tfidf_logreg": fit_predict,
    "text_length": length_fit_predict,
    "majority": majority_fit_predict,
}


def evaluate_all(train: Rows, val: Rows, test: Rows, seed: int = 42) -> dict[str, Any]:
    """Every baseline's validation-tuned threshold and validation/test metrics."""
    val_labels = np.asarray([r["label"] for r in val])
    test_labels = np.asarray([r["label"] for r in test])
    out: dict[str, Any] = {}
    for name, fn in BASELINES.items():
        val_scores, test_scores = fn(train, [val, test], seed)
        # Majority: "never a spoiler" (a threshold above every score).
        threshold = 1.01 if name == "majority" else tune_threshold(val_labels, val_scores)
        out[name] = {"threshold": threshold,
                     "test": classification_metrics(test_labels, test_scores, threshold),
                     "validation": classification_metrics(val_labels, val_scores, threshold)}
        log.info("Baseline %s test_roc_auc=%.4f test_f1_spoiler=%.4f test_accuracy=%.4f", name,
                 out[name]["test"]["roc_auc"], out[name]["test"]["f1_spoiler"],
                 out[name]["test"]["accuracy"])
    return out


def run(prepared: Path, out_dir: Path, seed: int = 42) -> dict[str, Any]:
    train, val, test = (read_split(prepared, s) for s in ("train", "validation", "test"))
    result = evaluate_all(train, val, test, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / BASELINES_FILE).write_text(json.dumps(result, indent=2) + "\n")
    metrics = {name: {"threshold": r["threshold"], "test": flat(r["test"]),
                      "validation": flat(r["validation"])} for name, r in result.items()}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return result


__all__ = ["BASELINES", "BASELINES_FILE", "evaluate_all", "fit_predict", "run"]
