"""`python -m spoiler_common.model_cli "some review"`: score texts with a bundle (no torch).

Also behind `python -m training predict`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from spoiler_common.exceptions import SpoilerStreamError
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("texts", nargs="+", help="Review text(s).")
    parser.add_argument("--bundle", type=Path, default=Path("models/serving"))
    parser.add_argument("--variant", choices=["auto", "int8", "fp32"], default="auto")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    variant: VariantChoice = args.variant
    try:
        for line in predict_texts(args.texts, args.bundle, variant, args.threads):
            print(line)
    except SpoilerStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
