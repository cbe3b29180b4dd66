"""A real, tiny model bundle for other components' tests, built in seconds.

    from training.tiny import build_tiny_bundle
    bundle_dir = build_tiny_bundle(tmp_path_factory.mktemp("bundle"))

It runs the project's own prepare/train/export/evaluate/package code on
generated reviews with a 2-layer DistilBERT built in code (MiniLM's vocab,
random init), so the files, bundle.json and the runtime path are exactly those
of a production bundle; only the model is small and weak. Cache it per test
session: it costs ~20-40 s on 2 cores.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from training.base_model import TINY
from training.params import (
    EvaluateParams,
    ExportParams,
    PackageParams,
    Params,
    PrepareParams,
    TrainParams,
)

log = logging.getLogger(__name__)


def tiny_params(version: str = "tiny-1", seed: int = 0) -> Params:
    return Params(
        prepare=PrepareParams(seed=seed, validation_size=0.15, test_size=0.15),
        train=TrainParams(base_model=TINY, max_length=128, truncation="head_tail", epochs=6,
                          batch_size=8, learning_rate=3e-3, warmup_ratio=0.05,
                          early_stopping_patience=3, seed=seed, threads=2),
        # A tiny random-init model leaves many scores near 0.5, where int8 rounding flips
        # labels; the gate still runs and records, at a looser bar than production's 0.995.
        # Every variant export can build, so the tests gate and load each one.
        export=ExportParams(min_label_agreement=0.9,
                            variants=["fp32-fused", "int8-selective", "int8-static"],
                            static_calibration_texts=16),
        # Weak on purpose (tests need a real bundle fast, not a good one): no baseline gate.
        evaluate=EvaluateParams(max_auc_gap=None),
        package=PackageParams(name="spoiler-tiny", version=version),
    )


def generated_reviews(n: int, seed: int, scenario: str = "none") -> list[dict[str, Any]]:
    from synth import generate

    return list(generate(n, seed, scenario=scenario))


def build_tiny_bundle(out_dir: Path, *, version: str = "tiny-1", seed: int = 0,
                      n_train: int = 400) -> Path:
    """Build a complete bundle (int8 + fp32 ONNX, tokenizer.json, bundle.json) into out_dir."""
    from training.pipeline import build_bundle

    out_dir = Path(out_dir)
    rows = generated_reviews(int(n_train / 0.7) + 1, seed)
    with tempfile.TemporaryDirectory(prefix="tiny-bundle-") as work:
        build_bundle(rows, Path(work), out_dir, tiny_params(version, seed))
    return out_dir


# The code a tiny bundle's contents depend on: a cached build is reused only while none
# of it changed (a clean clone builds afresh, so a stale cache would let a local run pass
# what CI fails).
_BUILD_SOURCES = ("training", "synth", "spoiler_common")


def build_digest() -> str:
    """A short hash of the code that builds a tiny bundle."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in _BUILD_SOURCES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cached_tiny_bundle(cache: Path, *, version: str, seed: int = 0, n_train: int = 400
                       ) -> Path:
    """The tiny bundle of (version, seed, n_train) under `cache`, built unless a readable
    one built by the same code is there; older builds of `version` are removed."""
    from spoiler_common.bundle import read_manifest
    from spoiler_common.exceptions import ModelBundleError

    out = Path(cache) / f"{version}-s{seed}-n{n_train}-{build_digest()}"
    for stale in Path(cache).glob(f"{version}-*"):
        if stale != out:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        read_manifest(out)
    except ModelBundleError:
        shutil.rmtree(out, ignore_errors=True)
        build_tiny_bundle(out, version=version, seed=seed, n_train=n_train)
    return out
