"""Model inference speed: the runtime loader (ONNX fp32 / int8) vs a naive per-review
transformers pipeline in PyTorch, at 128 and 256 tokens, on generated reviews.

The bundle is MiniLM-L6 (the offline encoder; realistic size) exported with the
project's own export code; its classifier head is untrained, which does not
change the speed. One thread everywhere (a worker process runs one onnxruntime
thread; scale by processes). ONNX runs batches of 16 (the worker's micro-batch);
the baseline runs one review at a time.

    .venv/bin/python -c "import benchmarks.model as m; m.run(quick=True)"
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CACHE = Path(__file__).resolve().parent.parent / "bench-results" / "model-minilm"
LENGTHS = (128, 256)
BATCH = 16


def _build_minilm(cache: Path) -> tuple[Path, Path]:
    """(saved PyTorch model dir, exported bundle dir), built once and cached."""
    from training import base_model
    from training.export import quantize, save_runtime_tokenizer, to_onnx
    from training.package import new_manifest, seal

    hf_dir, bundle = cache / "hf", cache / "bundle"
    if (bundle / "bundle.json").is_file() and (hf_dir / "config.json").is_file():
        return hf_dir, bundle
    shutil.rmtree(cache, ignore_errors=True)
    tok, model, _ = base_model.load(base_model.OFFLINE_MINILM, seed=0)
    model.save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    bundle.mkdir(parents=True)
    to_onnx(hf_dir, bundle / "model.fp32.onnx", 18)
    quantize(bundle / "model.fp32.onnx", bundle / "model.onnx")
    save_runtime_tokenizer(hf_dir, bundle / "tokenizer.json")
    seal(bundle, new_manifest(
        name="bench-minilm", version="bench", base_model=base_model.OFFLINE_MINILM,
        max_length=256, truncation="head", threshold=0.5))
    return hf_dir, bundle


def _with_length(bundle: Path, max_length: int, work: Path) -> Path:
    from spoiler_common.bundle import read_manifest
    from training.package import seal

    target = work / f"bundle-{max_length}"
    if not target.exists():
        shutil.copytree(bundle, target)
        seal(target, read_manifest(target).updated(max_length=max_length))
    return target


def _stats(latencies: list[float], n_reviews: int) -> dict[str, float]:
    total = sum(latencies)
    return {"reviews": n_reviews, "reviews_per_s": round(n_reviews / total, 2),
            "p50_batch_ms": round(float(np.percentile(latencies, 50)) * 1000, 1),
            "p99_batch_ms": round(float(np.percentile(latencies, 99)) * 1000, 1)}


def _onnx(bundle_dir: Path, variant: str, texts: list[str]) -> dict[str, float]:
    from spoiler_common.model_runtime import load_bundle

    bundle = load_bundle(bundle_dir, variant=variant, threads=1)  # type: ignore[arg-type]
    bundle.predict(texts[:BATCH])  # warm-up
    latencies = []
    for start in range(0, len(texts), BATCH):
        t = time.perf_counter()
        bundle.predict(texts[start : start + BATCH])
        latencies.append(time.perf_counter() - t)
    return {**_stats(latencies, len(texts)), "batch": BATCH}


def _torch_pipeline(hf_dir: Path, max_length: int, texts: list[str]) -> dict[str, float]:
    import torch
    from transformers import pipeline

    torch.set_num_threads(1)
    clf = pipeline("text-classification", model=str(hf_dir), tokenizer=str(hf_dir),
                   device=-1, truncation=True, max_length=max_length)
    clf(texts[0])
    latencies = []
    for text in texts:
        t = time.perf_counter()
        clf(text)
        latencies.append(time.perf_counter() - t)
    return {**_stats(latencies, len(texts)), "batch": 1}


def run(quick: bool = False) -> dict[str, Any]:
    from spoiler_common.model_runtime import model_text
    from synth import generate

    n_onnx, n_torch = (48, 24) if quick else (500, 200)
    texts = [model_text(r["review_summary"], r["review_text"])
             for r in generate(n_onnx, seed=123)]
    started = time.monotonic()
    hf_dir, bundle = _build_minilm(CACHE)
    results: dict[str, Any] = {"model": "all-MiniLM-L6-v2 (22.7M params)", "threads": 1,
                               "quick": quick, "rows": []}
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        for length in LENGTHS:
            sized = _with_length(bundle, length, Path(tmp))
            measured = (
                ("pytorch per-review pipeline", _torch_pipeline(hf_dir, length, texts[:n_torch])),
                ("onnx fp32 (runtime)", _onnx(sized, "fp32", texts)),
                ("onnx int8 (runtime)", _onnx(sized, "int8", texts)),
            )
            for name, numbers in measured:
                row = {"max_length": length, "engine": name, **numbers}
                results["rows"].append(row)
                log.info("bench %s", row)
    results["seconds"] = round(time.monotonic() - started, 1)
    print(table(results))
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"Model inference ({results['model']}, {results['threads']} thread)",
             "| max_length | engine | batch | reviews | reviews/s | p50 batch ms | p99 batch ms |",
             "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['max_length']} | {r['engine']} | {r['batch']} | {r['reviews']} | "
                     f"{r['reviews_per_s']} | {r['p50_batch_ms']} | {r['p99_batch_ms']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    run(quick="--quick" in sys.argv)
