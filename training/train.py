"""train: fine-tune a sequence classifier with a class-weighted loss and early stopping.

Texts are tokenized by `spoiler_common.model_runtime.TextEncoder` on the fast
tokenizer's own `tokenizers` backend, the very code that serves, so training
and serving see identical ids (incl. head+tail truncation). Early stopping and
checkpoint choice use the validation split's ROC-AUC; the test split is never
read here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from spoiler_common.model_runtime import TextEncoder, pad
from training import base_model
from training.data import read_split
from training.exceptions import DataError
from training.layer_cache import BottomCache
from training.params import TrainParams
from training.progress import Progress

log = logging.getLogger(__name__)

CHECKPOINT_MODEL = "model"  # save_pretrained directory inside the train output
VALIDATION_SCORES = "validation_scores.json"


def runtime_encoder(hf_tokenizer: Any, max_length: int, truncation: str) -> TextEncoder:
    """A TextEncoder over a copy of the HF fast tokenizer's backend (the runtime's tokenizer)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    return TextEncoder(backend, max_length, truncation)  # type: ignore[arg-type]


def _check_texts(rows: list[dict[str, Any]], split: str) -> None:
    if not rows:
        raise DataError(f"the {split} split is empty: re-run prepare with more data")
    empty = sum(1 for r in rows if not str(r.get("text", "")).strip())
    if empty:
        raise DataError(f"{empty} empty texts in the {split} split: re-run prepare, which "
                        "drops them")
    if len({r["label"] for r in rows}) < 2:
        raise DataError(f"the {split} split holds one class only: a classifier needs "
                        "spoilers and non-spoilers; add data or change the split sizes")


def class_weights(labels: np.ndarray, mode: str) -> list[float]:
    if mode == "none":
        return [1.0, 1.0]
    counts = np.bincount(labels, minlength=2).astype(float)
    return (len(labels) / (2 * np.maximum(counts, 1))).round(6).tolist()


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), in shuffled order."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(idx), chunk):
        part = sorted(idx[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _tensors(rows: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    ids, mask = pad(rows, pad_id)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def score_torch(model: Any, encoder: TextEncoder, texts: list[str],
                batch_size: int = 32) -> np.ndarray:
    """P(spoiler) from the PyTorch model, batched by length."""
    import torch

    rows = encoder.ids(texts)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = np.empty(len(rows), dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = _tensors([rows[i] for i in idx], encoder.special.pad)
            logits = model(input_ids=ids, attention_mask=mask).logits.double()
            out[idx] = torch.softmax(logits, dim=-1)[:, 1].numpy()
    return out


def _bottom_cache(model: Any, encoder: TextEncoder, rows: list[list[int]],
                  val_texts: list[str], params: TrainParams) -> BottomCache | None:
    """With train.frozen_layers, the frozen bottom's output for train then validation texts."""
    if not params.frozen_layers:
        return None
    started = time.monotonic()
    cache = BottomCache(model, params.frozen_layers)
    every = rows + encoder.ids(val_texts)
    order = sorted(range(len(every)), key=lambda i: len(every[i]))
    chunks = [order[i:i + 32] for i in range(0, len(order), 32)]
    cache.fill([_tensors([every[i] for i in chunk], encoder.special.pad) for chunk in chunks],
               [i for chunk in chunks for i in chunk])
    log.info("Frozen bottom computed once frozen_layers=%d texts=%d seconds=%.1f",
             params.frozen_layers, len(every), time.monotonic() - started)
    return cache


def fit(model: Any, encoder: TextEncoder, train_rows: list[dict[str, Any]],
        val_rows: list[dict[str, Any]], params: TrainParams) -> dict[str, Any]:
    """Train in place; restores the best epoch's weights (by validation ROC-AUC)."""
    import torch
    from sklearn.metrics import roc_auc_score
    from transformers import get_linear_schedule_with_warmup

    _check_texts(train_rows, "train")
    _check_texts(val_rows, "validation")
    if params.threads:
        torch.set_num_threads(params.threads)
    torch.manual_seed(params.seed)
    rng = random.Random(params.seed)
    rows = encoder.ids([r["text"] for r in train_rows])
    labels = np.asarray([r["label"] for r in train_rows], dtype=int)
    val_labels = np.asarray([r["label"] for r in val_rows], dtype=int)
    val_texts = [r["text"] for r in val_rows]
    weights = class_weights(labels, params.class_weights)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))

    steps_per_epoch = math.ceil(len(rows) / params.batch_size)
    total = math.ceil(steps_per_epoch * params.epochs)
    if params.max_steps:
        total = min(total, params.max_steps)
    cache = _bottom_cache(model, encoder, rows, val_texts, params)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=params.learning_rate, weight_decay=params.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total * params.warmup_ratio),
                                                total)
    history: list[dict[str, float]] = []
    best_auc, best_state, best_epoch, bad_epochs = -1.0, None, 0, 0
    best_scores = np.zeros(0)
    step, epoch, started = 0, 0, time.monotonic()
    with Progress("train", total) as progress:
        while step < total:
            epoch += 1
            if cache is None:
                model.train()
            else:
                cache.train()
            losses = []
            for batch in _batches([len(r) for r in rows], params.batch_size, rng):
                if step >= total:
                    break
                if cache is None:
                    ids, mask = _tensors([rows[i] for i in batch], encoder.special.pad)
                    logits = model(input_ids=ids, attention_mask=mask).logits
                else:
                    logits = cache.logits(batch)
                target = torch.from_numpy(labels[batch])
                loss = loss_fn(logits, target)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step += 1
                losses.append(float(loss.detach()))
                progress.advance(1, loss=float(np.mean(losses[-20:])))
            if cache is None:
                scores = score_torch(model, encoder, val_texts)
            else:
                scores = cache.scores(range(len(rows), len(rows) + len(val_texts)))
            auc = float(roc_auc_score(val_labels, scores))
            record = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)),
                      "val_roc_auc": auc, "elapsed_s": round(time.monotonic() - started, 1)}
            history.append(record)
            log.info("Epoch done epoch=%d step=%d/%d train_loss=%.4f val_roc_auc=%.4f", epoch,
                     step, total, record["train_loss"], auc)
            if auc > best_auc:
                best_auc, best_epoch, bad_epochs = auc, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                best_scores = np.asarray(scores, dtype=float)
            else:
                bad_epochs += 1
                if params.early_stopping_patience and bad_epochs >= params.early_stopping_patience:
                    log.info("Early stopping: no validation AUC gain for %d epoch(s)", bad_epochs)
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"history": history, "best_epoch": best_epoch, "best_val_roc_auc": best_auc,
            "steps": step, "class_weights": weights, "n_train": len(rows),
            "n_validation": len(val_rows), "seconds": round(time.monotonic() - started, 1),
            "validation_scores": best_scores.tolist()}


def texts_digest(texts: list[str]) -> str:
    """Identifies a list of texts (which validation split some scores belong to)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def run(prepared: Path, out_dir: Path, params: TrainParams) -> dict[str, Any]:
    """Train from the prepared splits; writes out_dir/model (save_pretrained) and train.json."""
    train_rows = read_split(prepared, "train")
    val_rows = read_split(prepared, "validation")
    tokenizer, model, base = base_model.load(params.base_model, params.seed)
    encoder = runtime_encoder(tokenizer, params.max_length, params.truncation)
    result = fit(model, encoder, train_rows, val_rows, params)
    # The kept model's PyTorch scores of the validation split: export's parity gate
    # compares ONNX with them instead of running PyTorch over the split again.
    scores = result.pop("validation_scores")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / VALIDATION_SCORES).write_text(json.dumps(
        {"texts_sha256": texts_digest([r["text"] for r in val_rows]), "scores": scores}))
    target = out_dir / CHECKPOINT_MODEL
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    info = {"base_model": params.base_model, "base_kind": base.kind,
            "max_length": params.max_length, "truncation": params.truncation, **result}
    (out_dir / "train.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
