"""export: ONNX via optimum, dynamic int8 quantization, and the parity gate.

The gate scores the validation split three ways — PyTorch, ONNX fp32, ONNX
int8 (the last two through the serving runtime) — and fails the stage unless
fp32 agrees with PyTorch and int8 with fp32 on at least `min_label_agreement`
of the labels (at 0.5; the tuned threshold does not exist yet). max |Δp| is
recorded. The output directory is a loadable provisional bundle (threshold
0.5, no metrics) that evaluate scores through the runtime.
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

from spoiler_common.model_runtime import TOKENIZER_FILE, VARIANT_FILES, load_bundle
from training.data import read_split
from training.exceptions import ParityGateError, TrainingError
from training.package import base_metadata, write_bundle_json
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


def parity(model_dir: Path, bundle_dir: Path, texts: list[str],
           min_agreement: float) -> dict[str, Any]:
    """Scores three ways; returns the parity report (does not raise)."""
    from transformers import AutoModelForSequenceClassification

    fp32 = load_bundle(bundle_dir, variant="fp32", threads=2)
    int8 = load_bundle(bundle_dir, variant="int8", threads=2)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    from training.train import score_torch

    p_torch = score_torch(model, fp32.encoder, texts)
    p_fp32 = fp32.predict(texts).probabilities
    p_int8 = int8.predict(texts).probabilities

    def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        agree = float(np.mean((a >= PARITY_THRESHOLD) == (b >= PARITY_THRESHOLD)))
        return {"label_agreement": agree, "max_abs_diff": float(np.max(np.abs(a - b))),
                "mean_abs_diff": float(np.mean(np.abs(a - b)))}

    report: dict[str, Any] = {
        "n": len(texts), "threshold": PARITY_THRESHOLD, "min_label_agreement": min_agreement,
        "fp32_vs_torch": compare(p_fp32, p_torch), "int8_vs_fp32": compare(p_int8, p_fp32)}
    report["passed"] = all(report[k]["label_agreement"] >= min_agreement
                           for k in ("fp32_vs_torch", "int8_vs_fp32"))
    return report


def run(train_dir: Path, prepared: Path, out_dir: Path, params: ExportParams) -> dict[str, Any]:
    """Export, quantize, gate. Raises ParityGateError (after writing parity.json) on failure."""
    from training.train import CHECKPOINT_MODEL

    model_dir = train_dir / CHECKPOINT_MODEL
    info = json.loads((train_dir / "train.json").read_text())
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    to_onnx(model_dir, out_dir / VARIANT_FILES["fp32"], params.opset)
    quantize(out_dir / VARIANT_FILES["fp32"], out_dir / VARIANT_FILES["int8"])
    save_runtime_tokenizer(model_dir, out_dir / TOKENIZER_FILE)
    meta = base_metadata(name="export", version="export", base_model=info["base_model"],
                         max_length=info["max_length"], truncation=info["truncation"],
                         threshold=PARITY_THRESHOLD)
    write_bundle_json(out_dir, meta)
    texts = [r["text"] for r in read_split(prepared, "validation")]
    report = parity(model_dir, out_dir, texts, params.min_label_agreement)
    report["seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("Parity fp32_vs_torch=%s int8_vs_fp32=%s passed=%s", report["fp32_vs_torch"],
             report["int8_vs_fp32"], report["passed"])
    if not report["passed"]:
        raise ParityGateError(
            f"parity gate failed (label agreement must be >= {params.min_label_agreement}): "
            f"fp32 vs PyTorch {report['fp32_vs_torch']['label_agreement']:.4f}, int8 vs fp32 "
            f"{report['int8_vs_fp32']['label_agreement']:.4f}; see {out_dir / 'parity.json'}. "
            "Serve the fp32 variant (SPOILER_WORKER_VARIANT=fp32) or train longer so fewer "
            "scores sit near 0.5"
        )
    meta["parity"] = report
    write_bundle_json(out_dir, meta)
    return report
