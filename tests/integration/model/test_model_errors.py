"""Bad input to the pipeline: one clear error naming the cause and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import base_model, prepare, train
from training.exceptions import BaseModelError, DataError
from training.params import PrepareParams, TrainParams

pytestmark = pytest.mark.integration


def _rows(n: int) -> list[dict]:
    from training.tiny import generated_reviews

    return [{"text": r["review_summary"] + " " + r["review_text"], "label": int(r["is_spoiler"])}
            for r in generated_reviews(n, 3)]


def test_model_missing_columns(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"review_text": "x", "rating": 3}) + "\n")
    with pytest.raises(DataError, match=r"lacks required column\(s\) \['is_spoiler'\]"):
        prepare.run(src, tmp_path / "out", PrepareParams())


def test_model_empty_texts_and_single_class() -> None:
    tok, model, _ = base_model.load("tiny:distilbert")
    enc = train.runtime_encoder(tok, 32, "head")
    rows = _rows(40)
    with pytest.raises(DataError, match="empty texts"):
        train.fit(model, enc, [*rows, {"text": " ", "label": 0}], rows, TrainParams())
    one_class = [r for r in rows if r["label"] == 0]
    with pytest.raises(DataError, match="one class only"):
        train.fit(model, enc, rows, one_class, TrainParams())


def test_model_missing_base_model_path(tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match=r"does not exist.*offline:minilm"):
        base_model.load(str(tmp_path / "no-model"))


def test_model_hub_name_while_offline(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  base_model: distilbert-base-uncased\n")
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for split in ("train", "validation"):
        (prepared / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in _rows(20)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "training", "train", "--prepared", str(prepared), "--out",
         str(tmp_path / "out"), "--params", str(params)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert "offline mode" in result.stderr and "offline:minilm" in result.stderr


def test_model_offline_minilm_trains_one_step() -> None:
    tok, model, resolved = base_model.load("offline:minilm")
    assert resolved.kind == "offline"
    enc = train.runtime_encoder(tok, 64, "head_tail")
    rows = _rows(40)
    info = train.fit(model, enc, rows[:24], rows[24:],
                     TrainParams(max_steps=1, batch_size=8, max_length=64))
    assert info["steps"] == 1
    assert 0.0 <= info["best_val_roc_auc"] <= 1.0
