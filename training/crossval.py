"""crossval: stratified k-fold of the transformer and the TF-IDF+LR baseline on one file.

For real-data evaluation where one split would be too noisy (e.g. 715
reviews). Each fold: the fold is the test part; 15% of the rest (stratified)
is the validation part for early stopping and the threshold; the remainder
trains. The transformer is scored in PyTorch (export parity is the export
stage's job). Prints ROC-AUC and spoiler F1 per fold, and mean ± sd.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from training import base_model, baseline
from training.data import read_reviews
from training.metrics import classification_metrics, tune_threshold
from training.params import TrainParams
from training.prepare import clean

log = logging.getLogger(__name__)


def run(file: Path, *, folds: int = 5, base_model_spec: str = "offline:minilm",
        max_length: int = 256, epochs: float = 3, seed: int = 42, batch_size: int = 16,
        learning_rate: float = 5e-5, threads: int = 0) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from training.train import fit, runtime_encoder, score_torch

    rows, dropped = clean(read_reviews(file))
    labels = np.asarray([r["label"] for r in rows])
    params = TrainParams(base_model=base_model_spec, max_length=max_length, epochs=epochs,
                         batch_size=batch_size, learning_rate=learning_rate,
                         early_stopping_patience=1, seed=seed, threads=threads)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (rest, test) in enumerate(splitter.split(np.zeros(len(rows)), labels), 1):
        train_idx, val_idx = train_test_split(rest, test_size=0.15, stratify=labels[rest],
                                              random_state=seed)
        train_rows = [rows[i] for i in train_idx]
        val_rows = [rows[i] for i in val_idx]
        test_rows = [rows[i] for i in test]
        y_val, y_test = labels[val_idx], labels[test]
        fold: dict[str, Any] = {"fold": k, "n_train": len(train_rows), "n_test": len(test_rows)}

        b_val, b_test = baseline.fit_predict(train_rows, [val_rows, test_rows], seed)
        fold["baseline"] = classification_metrics(y_test, b_test, tune_threshold(y_val, b_val))

        t0 = time.monotonic()
        tokenizer, model, _ = base_model.load(base_model_spec, seed)
        encoder = runtime_encoder(tokenizer, max_length, params.truncation)
        info = fit(model, encoder, train_rows, val_rows, params)
        t_val = score_torch(model, encoder, [r["text"] for r in val_rows])
        t_test = score_torch(model, encoder, [r["text"] for r in test_rows])
        fold["transformer"] = classification_metrics(y_test, t_test, tune_threshold(y_val, t_val))
        fold["transformer"]["best_epoch"] = info["best_epoch"]
        fold["seconds"] = round(time.monotonic() - t0, 1)
        results.append(fold)
        elapsed = time.monotonic() - started
        log.info("Fold %d/%d transformer roc_auc=%.3f f1=%.3f baseline roc_auc=%.3f f1=%.3f "
                 "elapsed=%.0fs eta=%.0fs", k, folds, fold["transformer"]["roc_auc"],
                 fold["transformer"]["f1_spoiler"], fold["baseline"]["roc_auc"],
                 fold["baseline"]["f1_spoiler"], elapsed, elapsed / k * (folds - k))
    summary = {}
    for model_name in ("transformer", "baseline"):
        for metric in ("roc_auc", "pr_auc", "f1_spoiler", "macro_f1", "accuracy"):
            vals = np.asarray([f[model_name][metric] for f in results])
            summary[f"{model_name}_{metric}"] = {"mean": float(vals.mean()),
                                                 "sd": float(vals.std(ddof=1))}
    return {"file": str(file), "n": len(rows), "spoiler_rate": float(labels.mean()),
            "dropped": dropped, "folds": results, "summary": summary,
            "settings": {"base_model": base_model_spec, "max_length": max_length,
                         "epochs": epochs, "seed": seed, "folds": folds},
            "seconds": round(time.monotonic() - started, 1)}


def table(result: dict[str, Any]) -> str:
    """Markdown table: per fold ROC-AUC / F1 of both models, then mean ± sd."""
    s = result["settings"]
    lines = [f"{result['file']}: n={result['n']} spoiler rate={result['spoiler_rate']:.3f}, "
             f"{s['folds']} folds, transformer={s['base_model']} max_length={s['max_length']} "
             f"epochs={s['epochs']} ({result['seconds']:.0f}s)", "",
             "| fold | transformer ROC-AUC | transformer F1 | TF-IDF+LR ROC-AUC | TF-IDF+LR F1 |",
             "|---|---|---|---|---|"]
    for f in result["folds"]:
        lines.append(f"| {f['fold']} | {f['transformer']['roc_auc']:.3f} | "
                     f"{f['transformer']['f1_spoiler']:.3f} | {f['baseline']['roc_auc']:.3f} | "
                     f"{f['baseline']['f1_spoiler']:.3f} |")
    sm = result["summary"]

    def ms(key: str) -> str:
        return f"{sm[key]['mean']:.3f} ± {sm[key]['sd']:.3f}"

    lines.append(f"| mean ± sd | {ms('transformer_roc_auc')} | {ms('transformer_f1_spoiler')} | "
                 f"{ms('baseline_roc_auc')} | {ms('baseline_f1_spoiler')} |")
    return "\n".join(lines)
