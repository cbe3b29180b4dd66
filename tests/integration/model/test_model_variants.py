"""Graph variants and length-aware batching on a real exported bundle (the tiny one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spoiler_common.batching import ONE_PER_CALL, BatchPolicy
from spoiler_common.exceptions import ModelBundleError
from spoiler_common.model_runtime import VARIANT_FILES, load_bundle
from training.export import choose_served
from training.graphs import SPEED_ORDER

pytestmark = pytest.mark.integration


def mixed_texts(real_sample: Path, n: int = 40) -> list[str]:
    texts = [json.loads(line)["review_text"] for line in real_sample.open()][:n]
    # Pairs of near-equal length so groups form, and very short ones among long ones.
    return [t for text in texts for t in (text, text + " Indeed.")] + ["Short.", "Tiny one."]


def test_the_gate_serves_the_fastest_passing_variant(tiny_bundle: Path) -> None:
    meta = json.loads((tiny_bundle / "bundle.json").read_text())
    parity = meta["parity"]
    variants = parity["variants"]
    # Every variant built was scored on ALL validation texts at the tuned threshold.
    assert set(variants) >= {"fp32", "int8", "fp32-fused", "int8-static"}
    assert all(v["n"] == parity["n"] for v in variants.values())
    assert parity["threshold"] == pytest.approx(meta["threshold"], abs=0.2)
    served = meta["default_variant"]
    assert served == choose_served(variants) and variants[served]["passed"]
    assert VARIANT_FILES[served] in meta["files"]
    # Every faster variant was refused with a reason, none served.
    faster = SPEED_ORDER[: SPEED_ORDER.index(served)]
    for name in faster:
        assert name not in variants or not variants[name]["passed"]
        if name in variants:
            assert "below" in parity["refused"][name]
    # The fused fp32 graph computes the same function: its labels agree exactly.
    assert variants["fp32-fused"]["label_agreement"] == 1.0
    assert variants["fp32-fused"]["max_abs_diff"] < 1e-2
    assert load_bundle(tiny_bundle).variant == served  # auto serves it


def test_every_carried_variant_loads_and_matches_fp32(tiny_bundle: Path,
                                                      real_sample: Path) -> None:
    texts = mixed_texts(real_sample, 10)
    meta = json.loads((tiny_bundle / "bundle.json").read_text())
    fp32 = load_bundle(tiny_bundle, variant="fp32").predict_raw(texts).probabilities
    fused = load_bundle(tiny_bundle, variant="fp32-fused").predict_raw(texts).probabilities
    assert np.max(np.abs(fused - fp32)) < 1e-4
    for variant, file in VARIANT_FILES.items():
        if file in meta["files"]:
            bundle = load_bundle(tiny_bundle, variant=variant)  # type: ignore[arg-type]
            scores = bundle.predict_raw(texts).probabilities
            assert scores.shape == (len(texts),) and np.all((scores >= 0) & (scores <= 1))


def test_int8_static_is_calibrated_offline_from_training_texts(tiny_bundle: Path) -> None:
    import onnx

    meta = json.loads((tiny_bundle / "bundle.json").read_text())
    static = meta["parity"]["variants"]["int8-static"]
    assert static["calibration"] == "minmax" and static["calibration_texts"] == 16
    graph = onnx.load(str(tiny_bundle / VARIANT_FILES["int8-static"])).graph
    ops = {n.op_type for n in graph.node}
    # Static QDQ: fixed-scale Quantize/Dequantize pairs, no per-call range measurement.
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert "DynamicQuantizeLinear" not in ops
    dynamic = {n.op_type for n in onnx.load(str(tiny_bundle / VARIANT_FILES["int8"])).graph.node}
    assert "DynamicQuantizeLinear" in dynamic


def test_a_variant_the_bundle_lacks_is_refused_with_what_it_has(tiny_bundle: Path,
                                                                tmp_path: Path) -> None:
    from spoiler_common.bundle import read_manifest
    from training.package import seal

    copy = tmp_path / "bundle"
    copy.mkdir()
    for name in ("model.onnx", "model.fp32.onnx", "tokenizer.json"):
        (copy / name).write_bytes((tiny_bundle / name).read_bytes())
    # An older bundle: fp32 and int8 only.
    seal(copy, read_manifest(tiny_bundle).updated(default_variant="fp32"))
    with pytest.raises(ModelBundleError, match=r"has no fp32-fused graph.*carries int8, fp32"):
        load_bundle(copy, variant="fp32-fused")
    assert load_bundle(copy).variant == "fp32"


def test_length_aware_batching_keeps_order_and_scores(tiny_bundle: Path,
                                                      real_sample: Path) -> None:
    texts = mixed_texts(real_sample)
    single = load_bundle(tiny_bundle, variant="fp32", batching=ONE_PER_CALL)
    grouped = load_bundle(tiny_bundle, variant="fp32",
                          batching=BatchPolicy(max_texts=8, max_padding_waste=0.2))
    calls: list[int] = []
    original = grouped.classifier.logits

    def counting(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        calls.append(len(ids))
        return original(ids, mask)

    grouped.classifier.logits = counting  # type: ignore[method-assign,assignment]
    a = single.predict(texts)
    b = grouped.predict(texts)
    # Same score for each text at its own index: the output keeps the input order.
    assert b.probabilities == pytest.approx(a.probabilities, abs=1e-5)
    assert b.input_tokens == a.input_tokens
    # Texts did share calls, never more than the policy allows.
    assert len(calls) < len(texts) and max(calls) <= 8 and sum(calls) == len(texts)


def test_the_checkpoint_kept_beside_a_bundle_is_found_only_for_its_version(
        tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from benchmarks.common import torch_checkpoint
    from spoiler_common.bundle import read_manifest
    from training.pipeline import checkpoint_dir, keep_checkpoint

    bundle = tmp_path / "serving"
    shutil.copytree(tiny_bundle, bundle)
    train = tmp_path / "train"
    (train / "model").mkdir(parents=True)
    (train / "model" / "config.json").write_text("{}")
    assert torch_checkpoint(bundle) is None
    kept = keep_checkpoint(train, bundle, read_manifest(bundle).version)
    assert kept == checkpoint_dir(bundle) == tmp_path / "serving.checkpoint"
    assert torch_checkpoint(bundle) == kept
    keep_checkpoint(train, bundle, "another-version")  # a stale checkpoint is not used
    assert torch_checkpoint(bundle) is None
