"""export: ONNX via optimum, the graph variants (training.graphs), and the parity gate.

The gate scores ALL validation texts with PyTorch and, through the serving
runtime, with every graph variant. It fails the stage unless the fp32 ONNX
graph agrees with PyTorch on at least `min_label_agreement` of the labels (the
export itself is broken otherwise). Then it fits the calibration and tunes the
threshold on the fp32 scores exactly as evaluate does, and compares each variant
with fp32 on the *calibrated* score at that tuned threshold: label agreement,
max and mean |Δp|. The served graph (`default_variant`) is the fastest variant
(`graphs.SPEED_ORDER`) that agrees on at least `min_label_agreement`, fp32 if
none does. The output directory is a loadable provisional bundle (threshold 0.5,
no metrics) that evaluate scores through the runtime.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from spoiler_common.bundle import TOKENIZER_FILE, VARIANT_FILES
from spoiler_common.model_runtime import ModelBundle, OnnxClassifier, load_bundle, pad
from training import graphs
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
    graphs.quantize_all(fp32, int8)


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


SERVED_SCORES = "served_validation_scores.json"
REFERENCE = "fp32"


def _raw_compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Agreement at 0.5 on raw scores (ONNX fp32 vs PyTorch: the export's own check)."""
    agree = float(np.mean((a >= PARITY_THRESHOLD) == (b >= PARITY_THRESHOLD)))
    return {"label_agreement": agree, "max_abs_diff": float(np.max(np.abs(a - b))),
            "mean_abs_diff": float(np.mean(np.abs(a - b))), "n": len(a)}


def compare(candidate: np.ndarray, reference: np.ndarray, threshold: float) -> dict[str, float]:
    """Label agreement at `threshold` and |Δp| of two calibrated score arrays."""
    diff = np.abs(candidate - reference)
    return {"label_agreement": float(np.mean((candidate >= threshold) == (reference >= threshold))),
            "max_abs_diff": float(np.max(diff)) if len(diff) else 0.0,
            "mean_abs_diff": float(np.mean(diff)) if len(diff) else 0.0, "n": len(diff)}


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


def _scorer(fp32: ModelBundle) -> Any:
    """Raw scores of any graph file of the bundle, through the serving runtime's encoder."""
    from dataclasses import replace

    def score(graph: Path, texts: list[str]) -> np.ndarray:
        bundle = replace(fp32, classifier=OnnxClassifier(graph, threads=2))
        return bundle.predict_raw(texts).probabilities

    return score


def _selective(fp32_file: Path, target: Path, work: Path, sample: list[str], score: Any,
               calibrate_fn: Any, budget: float) -> dict[str, Any] | None:
    def calibrated(graph: Path) -> np.ndarray:
        return np.asarray(calibrate_fn(score(graph, sample)))

    return graphs.quantize_selective(fp32_file, target, work, calibrated,
                                     calibrated(fp32_file), budget)


def _feeds(fp32: ModelBundle, texts: list[str]) -> Iterator[dict[str, np.ndarray]]:
    """One session input per text, encoded exactly as the runtime encodes it."""
    for row in fp32.encoder.ids(texts):
        yield fp32.classifier.feed(*pad([row], fp32.encoder.special.pad))


def _calibration_texts(prepared: Path, params: ExportParams, seed: int) -> list[str] | None:
    """A seeded sample of training texts for int8-static's ranges; None when not built."""
    if "int8-static" not in params.variants:
        return None
    texts = [r["text"] for r in read_split(prepared, "train")]
    picked = np.random.default_rng(seed).permutation(len(texts))[: params.static_calibration_texts]
    return [texts[i] for i in sorted(picked)]


def build_variants(out_dir: Path, model_dir: Path, params: ExportParams,
                   fp32: ModelBundle, texts: list[str], calibrate_fn: Any,
                   calibration_texts: list[str] | None = None) -> dict[str, Any]:
    """Write every variant graph `params.variants` asks for; what was built and how.

    `texts` are validation texts (the sensitivity sweep's); `calibration_texts` are
    training texts, for int8-static's activation ranges.
    """
    built: dict[str, Any] = {"fp32": {}, "int8": {}}  # run() wrote both
    fp32_file = out_dir / VARIANT_FILES["fp32"]
    score = _scorer(fp32)
    for name in params.variants:
        target = out_dir / VARIANT_FILES[name]
        started = time.monotonic()
        try:
            info: dict[str, Any] | None
            if name == "fp32-fused":
                fused = graphs.fuse(fp32_file, target, model_dir)
                info = {"fused_operators": fused} if fused else None
            elif name == "int8-static":
                if not calibration_texts:
                    raise TrainingError("int8-static needs training texts for its ranges")
                info = graphs.quantize_static_int8(
                    fp32_file, target, out_dir, _feeds(fp32, calibration_texts))
            elif name == "int8-selective":
                info = _selective(fp32_file, target, out_dir, texts[: params.sensitivity_texts],
                                  score, calibrate_fn, params.selective_budget)
            else:  # fp32 and int8: already there
                continue
        except Exception as exc:  # onnxruntime's tools raise many types; the variant is skipped
            log.warning("Graph variant not built variant=%s error=%s", name, exc)
            info = None
            built.setdefault("_not_built", {})[name] = f"{type(exc).__name__}: {exc}"
        if info is None:
            target.unlink(missing_ok=True)
            built.setdefault("_not_built", {}).setdefault(name, "nothing to build")
            continue
        built[name] = {**info, "build_seconds": round(time.monotonic() - started, 1)}
    return built


def choose_served(variants: dict[str, dict[str, Any]]) -> str:
    """The first variant of `graphs.SPEED_ORDER` that passed the gate; fp32 if none did."""
    return next((v for v in graphs.SPEED_ORDER if variants.get(v, {}).get("passed")), REFERENCE)


def parity(model_dir: Path, bundle_dir: Path, rows: list[dict[str, Any]], params: ExportParams,
           seed: int = 42, calibration_texts: list[str] | None = None,
           ) -> tuple[dict[str, Any], np.ndarray]:
    """Build the variants, gate each one, choose the served graph; its raw validation scores.

    Does not raise; `passed` is false only if fp32 itself disagrees with PyTorch
    (a broken export).
    """
    from training import calibrate
    from training.metrics import tune_threshold

    texts = [r["text"] for r in rows]
    labels = np.asarray([r["label"] for r in rows], dtype=int)
    fp32 = load_bundle(bundle_dir, variant="fp32", threads=2, verify=False)
    p_torch = torch_scores(model_dir, texts, fp32.encoder)
    raw = {REFERENCE: fp32.predict_raw(texts).probabilities}
    # What evaluate would fit if fp32 were served: the gate judges answers users see.
    calibration, _ = calibrate.choose(labels, raw[REFERENCE], seed)
    threshold = tune_threshold(labels, calibration.apply(raw[REFERENCE]))
    built = build_variants(bundle_dir, model_dir, params, fp32, texts, calibration.apply,
                           calibration_texts)
    not_built = built.pop("_not_built", {})
    score = _scorer(fp32)
    reference = calibration.apply(raw[REFERENCE])
    variants: dict[str, Any] = {}
    for name in built:
        if name not in raw:
            raw[name] = score(bundle_dir / VARIANT_FILES[name], texts)  # type: ignore[index]
        result = compare(calibration.apply(raw[name]), reference, threshold)
        result["passed"] = result["label_agreement"] >= params.min_label_agreement
        variants[name] = {**result, **built[name]}
    report: dict[str, Any] = {
        "n": len(texts), "threshold": threshold, "calibration": calibration.method,
        "reference": "fp32 ONNX graph (equal to PyTorch, see fp32_vs_torch)",
        "min_label_agreement": params.min_label_agreement, "speed_order": list(graphs.SPEED_ORDER),
        "fp32_vs_torch": _raw_compare(raw[REFERENCE], p_torch),
        "variants": variants, "not_built": not_built,
    }
    report["passed"] = report["fp32_vs_torch"]["label_agreement"] >= params.min_label_agreement
    served = choose_served(variants)
    report["served_variant"] = served
    report["refused"] = {
        v: (f"{v} agrees with fp32 on {variants[v]['label_agreement']:.4f} of the validation "
            f"labels at the tuned threshold, below {params.min_label_agreement}")
        for v in variants if not variants[v]["passed"]}
    return report, raw[served]


def run(train_dir: Path, prepared: Path, out_dir: Path, params: ExportParams,
        seed: int = 42) -> dict[str, Any]:
    """Export, build the variants, gate; pick the served graph. ParityGateError if fp32 fails."""
    from training.train import CHECKPOINT_MODEL, texts_digest

    model_dir = train_dir / CHECKPOINT_MODEL
    info = json.loads((train_dir / "train.json").read_text())
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    to_onnx(model_dir, out_dir / VARIANT_FILES["fp32"], params.opset)
    # Every bundle carries int8 (model.onnx) and fp32; build_variants adds the others.
    quantize(out_dir / VARIANT_FILES["fp32"], out_dir / VARIANT_FILES["int8"])
    save_runtime_tokenizer(model_dir, out_dir / TOKENIZER_FILE)
    manifest = seal(out_dir, new_manifest(
        name="export", version="export", base_model=info["base_model"],
        max_length=info["max_length"], truncation=info["truncation"],
        threshold=PARITY_THRESHOLD))
    rows = read_split(prepared, "validation")
    texts = [r["text"] for r in rows]
    report, served = parity(model_dir, out_dir, rows, params, seed,
                            calibration_texts=_calibration_texts(prepared, params, seed))
    report["seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("Parity fp32_vs_torch=%s variants=%s served_variant=%s", report["fp32_vs_torch"],
             {k: round(v["label_agreement"], 4) for k, v in report["variants"].items()},
             report["served_variant"])
    if not report["passed"]:
        raise ParityGateError(
            f"parity gate failed: the fp32 ONNX graph agrees with PyTorch on only "
            f"{report['fp32_vs_torch']['label_agreement']:.4f} of the labels (must be >= "
            f"{params.min_label_agreement}); the export is broken, see {out_dir / 'parity.json'}"
        )
    for variant, reason in report["refused"].items():
        log.warning("Not serving %s: %s", variant, reason)
    # evaluate scores the same texts with the same graph: it reads these instead.
    (out_dir / SERVED_SCORES).write_text(json.dumps(
        {"variant": report["served_variant"], "texts_sha256": texts_digest(texts),
         "scores": served.tolist()}))
    seal(out_dir, manifest.updated(parity=report, default_variant=report["served_variant"]))
    return report
