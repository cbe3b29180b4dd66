"""One model's prediction for one review, as the contract has it (champion or challenger)."""

from __future__ import annotations

from datetime import datetime

from spoiler_common.contracts import ModelRole, ReviewPublished, SpoilerPredicted
from stream_processor.model_holder import Model


def prediction_for(
    review: ReviewPublished,
    *,
    model: Model,
    probability: float,
    input_tokens: int | None,
    unknown_tokens: int | None,
    inference_ms: float,
    queue_ms: float,
    predicted_at: datetime,
    role: ModelRole = "champion",
) -> SpoilerPredicted:
    """The SpoilerPredicted for one review; the label uses the bundle's threshold."""
    probability = min(1.0, max(0.0, float(probability)))
    threshold = float(model.threshold)
    end_to_end_ms = (predicted_at - review.produced_at).total_seconds() * 1000.0
    return SpoilerPredicted(
        review_id=review.review_id,
        role=role,
        spoiler_probability=probability,
        is_spoiler=probability >= threshold,
        threshold=threshold,
        model_name=str(model.name),
        model_version=str(model.version),
        produced_at=review.produced_at,
        predicted_at=predicted_at,
        inference_ms=max(0.0, float(inference_ms)),
        queue_ms=max(0.0, float(queue_ms)),
        # Producer and worker clocks may disagree by a few ms: never negative.
        end_to_end_ms=max(0.0, end_to_end_ms),
        input_tokens=None if input_tokens is None else int(input_tokens),
        unknown_tokens=None if unknown_tokens is None else int(unknown_tokens),
    )


__all__ = ["prediction_for"]
