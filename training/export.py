"""export: ONNX via optimum, dynamic int8 quantization, and the parity gate.

The gate scores the validation split three ways — PyTorch, ONNX fp32 (on a
sample: it checks the export), ONNX int8 (all of it; the last two through the
serving runtime). It fails the stage unless fp32 agrees with PyTorch on at
least `min_label_agreement` of the labels (at 0.5; the tuned threshold does not
exist yet), and it chooses the served graph (`default_variant`): int8 when it
agrees with fp32 that well, else fp32 — the fastest graph that keeps the
model's answers. max |Δp| is recorded. The output directory is a loadable
provisional bundle (threshold 0.5, no metrics) that evaluate scores through the
runtime.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from spoiler_common.bundle import TOKENIZER_FILE, VARIANT_FILES
from spoiler_common.model_runtime import load_bundle
from training.data import read_split
from training.exceptions import ParityGateError, TrainingError
from training.package import new_manifest, seal
from training.params import ExportParams

log = logging.getLogger(__name__)

PARITY_THRESHOLD = 0.5


def to_onnx(model_dir: Path, out_file: Path, opset: int) -> None:
    """Export a saved sequence classifier to one ONNX file with dynamic batch/sequence axes."""
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory(prefix="onnx-export-") as tmp:
        try:
            main_export(str(model_dir), output=tmp, task="text-classification", opset=opset,
                        do_validation=False, local_files_only=True)
        except Exception as exc:  # optimum raises many types; keep the cause
            raise TrainingError(f"ONNX export of {model_dir} failed: {exc}") from exc
        shutil.move(str(Path(tmp) / "model.onnx"), out_file)


def quantize(fp32: Path, int8: Path) -> None:
    """Dynamic int8 weights for the CPU (optimum's quantizer fails on some graphs; this works)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs dozens of lines per layer on the root logger at INFO.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


def save_runtime_tokenizer(model_dir: Path, out_file: Path) -> None:
    """tokenizer.json for the `tokenizers` runtime, without baked-in truncation/padding."""
    from tokenizers import Tokenizer

    source = model_dir / TOKENIZER_FILE
    if not source.is_file():
        raise TrainingError(f"{source} is missing: the checkpoint has no fast tokenizer")
    tok = Tokenizer.from_file(str(source))
    tok.no_truncation()
    tok.no_padding()
    tok.save(str(out_file))


# fp32 ONNX vs PyTorch checks the export itself (same arithmetic, ~1e-6 apart): a
# sample of the validation split is enough. int8 vs fp32 checks quantization: all of it.
FP32_CHECK_TEXTS = 200
SERVED_SCORES = "served_validation_scores.json"


def _compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    agree = float(np.mean((a >= PARITY_THRESHOLD) == (b >= PARITY_THRESHOLD)))
    return {"label_agreement": agree, "max_abs_diff": float(np.max(np.abs(a - b))),
            "mean_abs_diff": float(np.mean(np.abs(a - b)))}


def torch_scores(model_dir: Path, texts: list[str], encoder: Any) -> np.ndarray:
    """The PyTorch model's scores of `texts`: train's own record when it scored these."""
    from training.train import VALIDATION_SCORES, score_torch, texts_digest

    saved = model_dir.parent / VALIDATION_SCORES
    known = json.loads(saved.read_text()) if saved.is_file() else {}
    if known.get("texts_sha256") == texts_digest(texts) and len(known["scores"]) == len(texts):
        return np.asarray(known["scores"], dtype=float)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    return score_torch(model, encoder, texts)


def parity(model_dir: Path, bundle_dir: Path, texts: list[str],
           min_agreement: float) -> tuple[dict[str, Any], np.ndarray]:
    """The parity report, which graph to serve, and that graph's raw validation scores.

    The served graph is the fastest that agrees with the PyTorch model on at least
    `min_agreement` of the validation labels: int8 when quantization kept the
    answers, else fp32. Does not raise; `passed` is false only if fp32 itself
    disagrees (a broken export).
    """
    fp32 = load_bundle(bundle_dir, variant="fp32", threads=2)
    int8 = load_bundle(bundle_dir, variant="int8", threads=2)
    p_torch = torch_scores(model_dir, texts, fp32.encoder)
    sample = min(len(texts), FP32_CHECK_TEXTS)
    p_fp32_sample = fp32.predict_raw(texts[:sample]).probabilities
    p_int8 = int8.predict_raw(texts).probabilities
    report: dict[str, Any] = {
        "n": len(texts), "threshold": PARITY_THRESHOLD, "min_label_agreement": min_agreement,
        "fp32_vs_torch": {**_compare(p_fp32_sample, p_torch[:sample]), "n": sample},
        # The fp32 reference is the PyTorch model (the ONNX fp32 graph equals it, above).
        "int8_vs_fp32": {**_compare(p_int8, p_torch), "n": len(texts)},
    }
    report["passed"] = report["fp32_vs_torch"]["label_agreement"] >= min_agreement
    if report["int8_vs_fp32"]["label_agreement"] >= min_agreement:
        report["served_variant"], served = "int8", p_int8
    else:
        report["served_variant"] = "fp32"
        report["int8_refused"] = (
            f"int8 agrees with fp32 on {report['int8_vs_fp32']['label_agreement']:.4f} of the "
            f"validation labels, below {min_agreement}: the bundle serves fp32")
        served = np.concatenate([p_fp32_sample, fp32.predict_raw(texts[sample:]).probabilities])
    return report, served


def run(train_dir: Path, prepared: Path, out_dir: Path, params: ExportParams) -> dict[str, Any]:
    """Export, quantize, gate; pick the served graph. ParityGateError if fp32 itself fails."""
    from training.train import CHECKPOINT_MODEL, texts_digest

    model_dir = train_dir / CHECKPOINT_MODEL
    info = json.loads((train_dir / "train.json").read_text())
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    to_onnx(model_dir, out_dir / VARIANT_FILES["fp32"], params.opset)
    quantize(out_dir / VARIANT_FILES["fp32"], out_dir / VARIANT_FILES["int8"])
    save_runtime_tokenizer(model_dir, out_dir / TOKENIZER_FILE)
    manifest = seal(out_dir, new_manifest(
        name="export", version="export", base_model=info["base_model"],
        max_length=info["max_length"], truncation=info["truncation"],
        threshold=PARITY_THRESHOLD))
    texts = [r["text"] for r in read_split(prepared, "validation")]
    report, served = parity(model_dir, out_dir, texts, params.min_label_agreement)
    report["seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("Parity fp32_vs_torch=%s int8_vs_fp32=%s served_variant=%s", report["fp32_vs_torch"],
             report["int8_vs_fp32"], report["served_variant"])
    if not report["passed"]:
        raise ParityGateError(
            f"parity gate failed: the fp32 ONNX graph agrees with PyTorch on only "
            f"{report['fp32_vs_torch']['label_agreement']:.4f} of the labels (must be >= "
            f"{params.min_label_agreement}); the export is broken, see {out_dir / 'parity.json'}"
        )
    if "int8_refused" in report:
        log.warning("Serving fp32: %s", report["int8_refused"])
    # evaluate scores the same texts with the same graph: it reads these instead.
    (out_dir / SERVED_SCORES).write_text(json.dumps(
        {"variant": report["served_variant"], "texts_sha256": texts_digest(texts),
         "scores": served.tolist()}))
    seal(out_dir, manifest.updated(parity=report, default_variant=report["served_variant"]))
    return report
