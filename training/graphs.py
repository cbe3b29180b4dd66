"""graphs: the ONNX graph variants export builds from the fp32 export.

Each variant is a file of the bundle (``spoiler_common.model_runtime.VARIANT_FILES``):

- ``fp32``: the export itself.
- ``fp32-fused``: onnxruntime's transformer optimizer (BERT fusions: EmbedLayerNormalization,
  Attention, SkipLayerNormalization, BiasGelu) on the fp32 graph; the same arithmetic in fewer,
  larger kernels, so its scores equal fp32's to ~1e-6.
- ``int8``: dynamic int8 of every MatMul, Gather and Gemm, per-channel (the original export).
- ``int8-selective``: dynamic int8 of the linear layers (weights only: attention's activation
  x activation MatMuls stay fp32) except the transformer layers a sensitivity sweep finds
  change the calibrated scores most (`sensitivity`).
- ``int8-static``: static QDQ int8 of every MatMul, per-channel weights, activation ranges
  fixed offline (MinMax) from training texts (`quantize_static_int8`); built only when
  ``export.variants`` lists it.

`SPEED_ORDER` ranks them, fastest first, as `benchmarks/graphs.py` measured them on the
served MiniLM bundle (docs/performance.md); export serves the first that passes the parity
gate.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SPEED_ORDER = ("int8", "int8-static", "int8-selective", "fp32-fused", "fp32")
_LAYER = re.compile(r"/layers?\.(\d+)/")


@contextmanager
def _quiet() -> Iterator[None]:
    """The optimizer and the quantizer log dozens of lines per layer on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _config(model_dir: Path) -> tuple[int, int]:
    """(attention heads, hidden size) of a transformers checkpoint (BERT or DistilBERT)."""
    cfg = json.loads((model_dir / "config.json").read_text())
    heads = cfg.get("num_attention_heads", cfg.get("n_heads"))
    hidden = cfg.get("hidden_size", cfg.get("dim"))
    return int(heads), int(hidden)


def fuse(fp32: Path, out: Path, model_dir: Path) -> dict[str, int]:
    """Write the fused fp32 graph; returns the fused operator counts (all zero: nothing fused)."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    heads, hidden = _config(model_dir)
    with _quiet():
        model = optimizer.optimize_model(
            str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden,
            optimization_options=FusionOptions("bert"), opt_level=0, use_gpu=False)
        stats = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
        model.save_model_to_file(str(out))
    return stats


def quantize_all(fp32: Path, out: Path) -> None:
    """Dynamic int8 of every quantizable op, per-channel weights (the original export)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)


def quantize_static_int8(fp32: Path, out: Path, work: Path,
                         feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Static QDQ int8 of every MatMul; activation ranges are the min/max over `feeds`.

    Dynamic int8 measures each activation's range per call; static fixes it from the
    calibration texts, which saves that work but clips (or wastes resolution on) whatever
    the texts did not show. MinMax, not a percentile or entropy histogram: those need
    every feed padded to one shape, and on the demo model a 99.99th percentile agreed on
    fewer labels than MinMax (0.913 vs 0.940 of 300 texts).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)
            self.count = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self.items, None)
            self.count += item is not None
            return item

    reader = Reader()
    prepared = work / "static-preprocessed.onnx"
    try:
        with _quiet():
            # The quantizer wants shapes inferred and constants folded first; symbolic shape
            # inference does not finish on optimum's BERT export, ONNX's own does.
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(out), reader, quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False,
                                           "WeightSymmetric": True})
    finally:
        prepared.unlink(missing_ok=True)
        (work / "augmented_model.onnx").unlink(missing_ok=True)
    return {"calibration": "minmax", "calibration_texts": reader.count}


def linear_layers(fp32: Path) -> dict[int, list[str]]:
    """The weight MatMuls of each transformer layer (attention's activation MatMuls excluded)."""
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    layers: dict[int, list[str]] = {}
    for node in graph.node:
        match = _LAYER.search(node.name)
        if node.op_type == "MatMul" and match and any(i in weights for i in node.input):
            layers.setdefault(int(match.group(1)), []).append(node.name)
    return layers


def quantize_nodes(fp32: Path, out: Path, nodes: list[str]) -> None:
    """Dynamic int8 (per-channel weights) of exactly `nodes`; everything else stays fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_quantize=nodes, op_types_to_quantize=["MatMul"],
                         extra_options={"MatMulConstBOnly": True})


def sensitivity(fp32: Path, work: Path, layers: dict[int, list[str]],
                score: Callable[[Path], np.ndarray], reference: np.ndarray) -> dict[int, float]:
    """Mean |Δp| (calibrated, vs fp32) of the sample when only that layer is int8."""
    result: dict[int, float] = {}
    for layer, nodes in sorted(layers.items()):
        probe = work / f"probe-layer{layer}.onnx"
        quantize_nodes(fp32, probe, nodes)
        result[layer] = float(np.mean(np.abs(score(probe) - reference)))
        probe.unlink()
        log.info("Sensitivity layer=%d nodes=%d mean_abs_diff=%.5f", layer, len(nodes),
                 result[layer])
    return result


def choose_layers(sensitivities: dict[int, float], budget: float) -> list[int]:
    """The least sensitive layers whose summed mean |Δp| stays within `budget`."""
    chosen: list[int] = []
    total = 0.0
    for layer, value in sorted(sensitivities.items(), key=lambda kv: kv[1]):
        if total + value > budget:
            break
        chosen.append(layer)
        total += value
    return sorted(chosen)


def quantize_selective(fp32: Path, out: Path, work: Path, score: Callable[[Path], np.ndarray],
                       reference: np.ndarray, budget: float) -> dict[str, Any] | None:
    """Build int8-selective; None when no layer fits the budget (the variant is not built)."""
    layers = linear_layers(fp32)
    sens = sensitivity(fp32, work, layers, score, reference)
    chosen = choose_layers(sens, budget)
    info: dict[str, Any] = {"sensitivity_mean_abs_diff": {str(k): v for k, v in sens.items()},
                            "budget": budget, "int8_layers": chosen,
                            "fp32_layers": sorted(set(layers) - set(chosen))}
    if not chosen:
        return None
    quantize_nodes(fp32, out, [n for layer in chosen for n in layers[layer]])
    return info


__all__ = ["SPEED_ORDER", "choose_layers", "fuse", "linear_layers", "quantize_all",
           "quantize_nodes", "quantize_selective", "quantize_static_int8", "sensitivity"]
