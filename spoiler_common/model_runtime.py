"""Load a model bundle and score reviews with onnxruntime and `tokenizers` only.

This module is what serves: the stream worker, the evaluate stage and the
``predict`` command all call it, so the text the model sees at training time
and in production goes through the same code. It imports numpy, onnxruntime,
tokenizers and the standard library only (never torch or transformers): a
worker that imports torch uses ~300 MB more memory.

    bundle = load_bundle(Path("models/serving"), threads=1)   # the graph the bundle serves
    batch = bundle.predict([model_text(summary, text)])
    batch.probabilities[0] >= bundle.threshold

The bundle's layout and its manifest, ``bundle.json``, are ``spoiler_common.bundle``'s:
this module reads the manifest through it, checks the files' sha256 and applies
the manifest's ``calibration`` to every score.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from spoiler_common.batching import BatchPolicy, length_groups
from spoiler_common.bundle import (
    BUNDLE_JSON,
    TOKENIZER_FILE,
    VARIANT_FILES,
    BundleManifest,
    Truncation,
    Variant,
    VariantChoice,
    read_manifest,
    verify_files,
)
from spoiler_common.calibration import Calibration
from spoiler_common.exceptions import ModelBundleError

log = logging.getLogger(__name__)


def model_text(review_summary: str | None, review_text: str | None) -> str:
    """The text the model reads: summary, one space, review text (either may be empty)."""
    summary = (review_summary or "").strip()
    text = (review_text or "").strip()
    if summary and text:
        return f"{summary} {text}"
    return summary or text


def head_tail_split(budget: int) -> tuple[int, int]:
    """How many word pieces come from the start and from the end under head_tail truncation.

    A quarter from the start (title, set-up) and the rest from the end, where
    reviews tend to give endings away (Sun et al. 2019 found head+tail best).
    """
    head = budget // 4
    return head, budget - head


def truncate_ids(ids: Sequence[int], budget: int, truncation: Truncation) -> list[int]:
    """Cut word-piece ids (without special tokens) to `budget` pieces."""
    if len(ids) <= budget:
        return list(ids)
    if truncation == "head_tail":
        head, tail = head_tail_split(budget)
        return [*ids[:head], *ids[len(ids) - tail:]] if tail else list(ids[:head])
    return list(ids[:budget])


@dataclass(frozen=True)
class SpecialTokens:
    cls: int
    sep: int
    pad: int
    unk: int


@dataclass(frozen=True)
class Encoded:
    """A batch ready for the model, plus counts taken before truncation."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    input_tokens: list[int]
    unknown_tokens: list[int]


class TextEncoder:
    """Tokenize like training did: no special tokens, truncate, add [CLS]/[SEP], pad to longest.

    Built on a `tokenizers.Tokenizer`; training passes its fast tokenizer's
    backend here, so both sides share one implementation.
    """

    def __init__(self, tokenizer: Any, max_length: int, truncation: Truncation = "head",
                 special: SpecialTokens | None = None) -> None:
        if max_length < 8:
            raise ModelBundleError(f"max_length must be at least 8, got {max_length}")
        if truncation not in ("head", "head_tail"):
            raise ModelBundleError(
                f"truncation must be 'head' or 'head_tail', got {truncation!r}"
            )
        self.tokenizer = tokenizer
        # The tokenizer file may carry truncation/padding from training; we do both ourselves.
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_length = max_length
        self.truncation: Truncation = truncation
        self.special = special or special_tokens_of(tokenizer)

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Model input ids per text (with [CLS]/[SEP], truncated, unpadded)."""
        return self._encode(texts)[0]

    def _encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int], list[int]]:
        budget = self.max_length - 2
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        unk = self.special.unk
        rows, n_tokens, n_unknown = [], [], []
        for enc in encodings:
            ids = enc.ids
            n_tokens.append(len(ids))
            n_unknown.append(sum(1 for i in ids if i == unk))
            rows.append([self.special.cls, *truncate_ids(ids, budget, self.truncation),
                         self.special.sep])
        return rows, n_tokens, n_unknown

    def encode(self, texts: Sequence[str]) -> Encoded:
        rows, n_tokens, n_unknown = self._encode(texts)
        return Encoded(*pad(rows, self.special.pad), n_tokens, n_unknown)


def pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad id lists to the longest one: (input_ids, attention_mask), both int64."""
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def special_tokens_of(tokenizer: Any, names: dict[str, str] | None = None) -> SpecialTokens:
    """Ids of the BERT-style special tokens; a tokenizer without them is unusable."""
    names = names or {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]"}
    found: dict[str, int] = {}
    for role, token in names.items():
        token_id = tokenizer.token_to_id(token)
        if token_id is None:
            raise ModelBundleError(
                f"the tokenizer has no {token} token ({role}); bundles need a BERT-style "
                "WordPiece tokenizer (DistilBERT, BERT, MiniLM)"
            )
        found[role] = int(token_id)
    return SpecialTokens(**found)


def softmax_spoiler(logits: np.ndarray) -> np.ndarray:
    """P(spoiler) from (n, 2) logits, numerically stable."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp[:, 1] / exp.sum(axis=1)).astype(np.float64)


@dataclass(frozen=True)
class BatchPrediction:
    """Scores for one batch, in input order."""

    probabilities: np.ndarray
    input_tokens: list[int]
    unknown_tokens: list[int]

    def labels(self, threshold: float) -> np.ndarray:
        return self.probabilities >= threshold


class OnnxClassifier:
    """An onnxruntime session for a sequence classifier exported by optimum."""

    def __init__(self, path: Path, threads: int = 1, *,
                 optimization: Literal["basic", "extended", "all"] = "all",
                 arena: bool = True) -> None:
        import onnxruntime as ort

        levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = levels[optimization]
        # benchmarks/graphs.py measures both; the arena (default) was no slower.
        opts.enable_cpu_mem_arena = arena
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelBundleError(
                f"onnxruntime cannot load {path}: {exc}; rebuild the bundle"
            ) from exc
        self.input_names = {i.name for i in self.session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self.input_names
        if missing:
            raise ModelBundleError(
                f"{path} lacks inputs {sorted(missing)}: not a sequence classifier export"
            )

    def feed(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        """The session's inputs for padded ids and mask."""
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:  # BERT-family exports (MiniLM) want it
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return feed

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, self.feed(input_ids, attention_mask))[0])


@dataclass
class ModelBundle:
    """A loaded bundle: its manifest (bundle.json), the tokenizer and one ONNX variant."""

    path: Path
    variant: Variant
    manifest: BundleManifest
    encoder: TextEncoder
    classifier: OnnxClassifier
    batching: BatchPolicy = field(default_factory=BatchPolicy)
    calibration: Calibration = field(default_factory=Calibration)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def max_length(self) -> int:
        return self.manifest.max_length

    @property
    def truncation(self) -> str:
        return self.manifest.truncation

    @property
    def files(self) -> dict[str, str]:
        return dict(self.manifest.files)

    @property
    def metadata(self) -> dict[str, Any]:
        """The manifest as JSON (what GET /model shows)."""
        return self.manifest.as_dict()

    @property
    def reference(self) -> dict[str, Any]:
        """Held-out histograms for the drift monitor (empty if the bundle has none)."""
        ref = self.manifest.reference
        return ref.model_dump() if ref is not None else {}

    def predict(self, texts: Sequence[str]) -> BatchPrediction:
        """Calibrated P(spoiler) per text, in order. Texts are model texts (see `model_text`)."""
        raw = self.predict_raw(texts)
        return BatchPrediction(self.calibration.apply(raw.probabilities), raw.input_tokens,
                               raw.unknown_tokens)

    def predict_raw(self, texts: Sequence[str]) -> BatchPrediction:
        """The model's own softmax P(spoiler), before calibration (for fitting and parity)."""
        n = len(texts)
        if n == 0:
            return BatchPrediction(np.zeros(0, dtype=np.float64), [], [])
        rows, n_tokens, n_unknown = self.encoder._encode(texts)
        probs = np.empty(n, dtype=np.float64)
        # Texts of similar length share a call (spoiler_common.batching); each score
        # goes back to its text's index, so the output keeps the input order.
        for idx in length_groups([len(r) for r in rows], self.batching):
            ids, mask = pad([rows[i] for i in idx], self.encoder.special.pad)
            probs[idx] = softmax_spoiler(self.classifier.logits(ids, mask))
        return BatchPrediction(probs, n_tokens, n_unknown)


def load_bundle(path: Path | str, variant: VariantChoice = "auto", threads: int = 1,
                *, verify: bool = True, batching: BatchPolicy | None = None) -> ModelBundle:
    """Load and check a bundle directory; raises ModelBundleError with the fix on any problem.

    `variant` "auto" loads the graph the bundle says to serve (`default_variant`).
    `batching` says which texts of one `predict` call share an onnxruntime call
    (default: `BatchPolicy()`, length-aware groups).
    """
    path = Path(path)
    if variant not in ("auto", *VARIANT_FILES):
        raise ModelBundleError(
            f"variant must be one of auto, {', '.join(sorted(VARIANT_FILES))}, got {variant!r}"
        )
    if path.exists() and not path.is_dir():
        raise ModelBundleError(f"{path} is not a bundle directory: point at the directory "
                               f"that holds {BUNDLE_JSON}, model.onnx and {TOKENIZER_FILE}")
    manifest = read_manifest(path)
    served = manifest.served_variant(variant)
    model_file = VARIANT_FILES[served]
    if model_file not in manifest.files:
        carried = [v for v, f in VARIANT_FILES.items() if f in manifest.files]
        raise ModelBundleError(
            f"bundle {path} has no {served} graph ({model_file}); it carries "
            f"{', '.join(carried) or 'no graph'}: choose one of those (or auto), or rebuild "
            "the bundle with this release's export")
    if verify:
        verify_files(path, manifest, (model_file, TOKENIZER_FILE))
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path / TOKENIZER_FILE))
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise ModelBundleError(f"cannot read {path / TOKENIZER_FILE}: {exc}") from exc
    encoder = TextEncoder(tokenizer, manifest.max_length, manifest.truncation,
                          special_tokens_of(tokenizer, manifest.special_tokens.model_dump()))
    calibration = manifest.calibration.calibration()
    classifier = OnnxClassifier(path / model_file, threads=threads)
    log.info("Loaded model bundle name=%s version=%s variant=%s threads=%d calibration=%s "
             "path=%s", manifest.name, manifest.version, served, threads, calibration.method,
             path)
    return ModelBundle(path, served, manifest, encoder, classifier,
                       batching=batching or BatchPolicy(), calibration=calibration)


__all__ = [
    "BatchPolicy",
    "BatchPrediction",
    "Calibration",
    "Encoded",
    "ModelBundle",
    "OnnxClassifier",
    "TextEncoder",
    "VariantChoice",
    "head_tail_split",
    "load_bundle",
    "model_text",
    "truncate_ids",
]
