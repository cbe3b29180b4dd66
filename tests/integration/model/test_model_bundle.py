"""The bundle and the runtime loader: round trip, variants, tokenizer parity, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spoiler_common import drift
from spoiler_common.exceptions import ModelBundleError
from spoiler_common.model_runtime import load_bundle, model_text

pytestmark = pytest.mark.integration

TEXTS = [
    model_text("Loved it", "The hero dies at the end and his brother was the killer."),
    model_text("", "A warm, funny film; the cast is great."),
    "Ünïcödé — naïve café, 東京の夜, emoji 🎬🍿, Ελληνικά, עברית",
    "word " * 3000,
    "",
]


def test_model_bundle_round_trip(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle, variant="int8", threads=1)
    meta = json.loads((tiny_bundle / "bundle.json").read_text())
    assert bundle.name == meta["name"] == "spoiler-tiny"
    assert bundle.version == "tiny-1"
    assert 0.0 < bundle.threshold < 1.0 and bundle.max_length == 128
    for key in ("format_version", "created_at", "base_model", "truncation", "label_map",
                "metrics", "validation_metrics", "baselines", "calibration", "data_hash",
                "training_spoiler_rate", "drift_thresholds", "quality_floors", "files"):
        assert key in meta
    assert set(bundle.reference["features"]) == set(drift.FEATURES)
    assert set(meta["baselines"]) == {"tfidf_logreg", "text_length", "majority"}
    assert meta["calibration"]["method"] in ("identity", "platt", "isotonic")
    # The runtime applies the bundle's calibration to the model's raw scores.
    raw = bundle.predict_raw(TEXTS).probabilities
    assert bundle.predict(TEXTS).probabilities == pytest.approx(bundle.calibration.apply(raw))
    result = bundle.predict(TEXTS)
    assert result.probabilities.shape == (len(TEXTS),)
    assert np.all((result.probabilities >= 0) & (result.probabilities <= 1))
    assert result.input_tokens[3] == 3000 and result.input_tokens[4] == 0
    assert result.unknown_tokens[2] >= 1
    # Batch composition does not change a text's score (dynamic padding is masked).
    alone = bundle.predict([TEXTS[0]]).probabilities[0]
    assert alone == pytest.approx(result.probabilities[0], abs=1e-5)


def test_model_int8_and_fp32_agree(tiny_bundle: Path) -> None:
    # The graphs agree on raw scores (the calibration, fitted on int8's, maps both after).
    int8 = load_bundle(tiny_bundle, variant="int8").predict_raw(TEXTS).probabilities
    fp32 = load_bundle(tiny_bundle, variant="fp32").predict_raw(TEXTS).probabilities
    assert np.max(np.abs(int8 - fp32)) < 0.05


@pytest.mark.parametrize("truncation", ["head", "head_tail"])
def test_model_tokenizer_matches_training(tiny_bundle: Path, truncation: str) -> None:
    from transformers import AutoTokenizer

    from training.base_model import minilm_path
    from training.train import runtime_encoder

    bundle = load_bundle(tiny_bundle)
    hf = AutoTokenizer.from_pretrained(minilm_path())
    train_side = runtime_encoder(hf, 128, truncation).ids(TEXTS)
    from tokenizers import Tokenizer

    from spoiler_common.model_runtime import TextEncoder

    serve_side = TextEncoder(Tokenizer.from_file(str(tiny_bundle / "tokenizer.json")), 128,
                             truncation).ids(TEXTS)  # type: ignore[arg-type]
    assert train_side == serve_side
    if truncation == "head":  # and both equal the HF tokenizer's own truncation
        expected = hf(TEXTS, truncation=True, max_length=128)["input_ids"]
        assert serve_side == expected
    assert bundle.encoder.ids(TEXTS) == runtime_encoder(hf, 128, bundle.truncation).ids(TEXTS)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_model_bundle_refusals(tiny_bundle: Path, tmp_path: Path) -> None:
    missing = _copy(tiny_bundle, tmp_path / "missing")
    (missing / "tokenizer.json").unlink()
    with pytest.raises(ModelBundleError, match=r"missing tokenizer\.json"):
        load_bundle(missing)

    corrupt = _copy(tiny_bundle, tmp_path / "corrupt")
    with (corrupt / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelBundleError, match="checksum mismatch"):
        load_bundle(corrupt)

    future = _copy(tiny_bundle, tmp_path / "future")
    meta = json.loads((future / "bundle.json").read_text())
    meta["format_version"] = 99
    (future / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="format_version 99"):
        load_bundle(future)

    with pytest.raises(ModelBundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelBundleError, match=r"bundle\.json is missing"):
        load_bundle(empty)


def test_model_predict_cli(tiny_bundle: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "training", "predict", "--bundle", str(tiny_bundle),
         "The twist: he was dead all along"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "tiny-1" in out.stdout and "p=" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "training", "predict", "--bundle",
                          "/nonexistent", "x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_model_runtime_does_not_import_torch() -> None:
    code = ("import sys; import spoiler_common.model_runtime as m, training.predict; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
