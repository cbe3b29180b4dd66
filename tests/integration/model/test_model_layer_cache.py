"""Training the top of the encoder on a cached bottom computes what the whole model computes."""

from __future__ import annotations

import pytest

from training.exceptions import TrainingError
from training.layer_cache import BottomCache

pytestmark = pytest.mark.integration


def _tiny_bert() -> object:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=3,
                        num_attention_heads=2, intermediate_size=32, num_labels=2)
    return BertForSequenceClassification(config)


def test_cached_bottom_gives_the_full_models_logits() -> None:
    import torch

    model = _tiny_bert()
    model.eval()  # type: ignore[attr-defined]
    ids = torch.tensor([[2, 5, 7, 9, 3], [2, 8, 3, 0, 0], [2, 4, 4, 6, 3]])
    mask = (ids != 0).long()
    with torch.inference_mode():
        full = model(input_ids=ids, attention_mask=mask).logits  # type: ignore[operator]
    cache = BottomCache(model, frozen_layers=2)
    # Fill in two batches, out of order, with their own padding: indexes are what count.
    cache.fill([(ids[[2, 0]], mask[[2, 0]]), (ids[[1], :3], mask[[1], :3])], [2, 0, 1])
    model.eval()  # type: ignore[attr-defined]
    with torch.inference_mode():
        cached = cache.logits([0, 1, 2])
    assert torch.allclose(cached, full, atol=1e-5)
    probs = torch.softmax(full.double(), dim=-1)[:, 1].numpy()
    assert cache.scores([0, 1, 2]) == pytest.approx(probs, abs=1e-6)
    # Only the top is trainable; the bottom's weights are frozen.
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}  # type: ignore[attr-defined]
    assert not any(n.startswith(("bert.embeddings", "bert.encoder.layer.0.",
                                 "bert.encoder.layer.1.")) for n in trainable)
    assert any(n.startswith("bert.encoder.layer.2.") for n in trainable)


def test_unsupported_model_or_depth_is_one_clear_error() -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    distil = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=32))
    with pytest.raises(TrainingError, match="frozen_layers to 0"):
        BottomCache(distil, 1)
    with pytest.raises(TrainingError, match="between 1 and 2"):
        BottomCache(_tiny_bert(), 3)
