"""Score texts with a bundle, as `python -m training predict TEXT...` prints them.

Only the serving runtime (onnxruntime + tokenizers): no torch, so it runs
wherever the worker runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from spoiler_common.model_runtime import VariantChoice, load_bundle


def predict_texts(texts: list[str], bundle: Path, variant: VariantChoice = "auto",
                  threads: int = 1) -> Iterator[str]:
    """One line per text: verdict, probability, tokens, then the text's start."""
    model = load_bundle(bundle, variant=variant, threads=threads)
    result = model.predict(texts)
    yield f"# {model.name} {model.version} ({model.variant}) threshold={model.threshold:.4f}"
    for text, p, n, unk in zip(texts, result.probabilities, result.input_tokens,
                               result.unknown_tokens, strict=True):
        verdict = "SPOILER" if p >= model.threshold else "ok"
        short = text if len(text) <= 60 else text[:57] + "..."
        yield f"{verdict:7} p={p:.4f} tokens={n} unknown={unk}  {short}"


__all__ = ["predict_texts"]
