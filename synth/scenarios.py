"""Named drift scenarios: what changes, and from which record index.

Each scenario is a set of knobs the generator reads per record. Records before
`drift_at` use `BASELINE`; records from `drift_at` on use the scenario's knobs.
The monitoring component proves each one is detected; docs/producer.md lists
them for operators.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

ScenarioName = Literal[
    "none", "spoiler_rate", "length", "length_short", "vocabulary", "rating", "label_noise"
]

# Share of reviews per rating 1..10, close to the IMDB Spoiler Dataset's
# (skewed high: about half are 10s; mean about 7.9).
BASE_RATING_WEIGHTS = (6.0, 2.5, 3.0, 3.0, 3.5, 5.0, 8.0, 11.0, 14.0, 44.0)
# The "rating" scenario: a film everybody hates (mean about 3.9).
LOW_RATING_WEIGHTS = (30.0, 14.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 3.0, 4.0)


@dataclass(frozen=True)
class Knobs:
    spoiler_rate: float = 0.25
    length_factor: float = 1.0
    rating_weights: tuple[float, ...] = BASE_RATING_WEIGHTS
    # Share of reviews about the unseen franchise, and of those with non-Latin text.
    drift_film_share: float = 0.0
    foreign_share: float = 0.0
    label_flip: float = 0.0


BASELINE = Knobs()

SCENARIOS: dict[str, Knobs] = {
    "none": BASELINE,
    "spoiler_rate": replace(BASELINE, spoiler_rate=0.60),
    "length": replace(BASELINE, length_factor=3.0),
    "length_short": replace(BASELINE, length_factor=1 / 3),
    "vocabulary": replace(BASELINE, drift_film_share=0.7, foreign_share=0.5),
    "rating": replace(BASELINE, rating_weights=LOW_RATING_WEIGHTS),
    "label_noise": replace(BASELINE, label_flip=0.30),
}

DESCRIPTIONS: dict[str, str] = {
    "none": "No drift: the baseline distribution throughout.",
    "spoiler_rate": "Spoiler rate rises from 25% to 60% (the text of each class is unchanged).",
    "length": "Reviews become about 3x longer (median ~470 words instead of ~160).",
    "length_short": "Reviews become about 3x shorter (median ~55 words).",
    "vocabulary": "70% of reviews are about a new franchise (the Vorthraxi Chronicles) with "
    "invented names and jargon split into many word pieces; half of those also carry "
    "Georgian, Ethiopic, Thai, Cherokee or emoji fragments that map to [UNK].",
    "rating": "Ratings shift low: mean about 3.9 instead of 7.9 (and the text's sentiment "
    "follows the rating).",
    "label_noise": "30% of labels are flipped (the text is unchanged): quality metrics drop "
    "while input statistics stay the same.",
}


def knobs_for(scenario: str) -> Knobs:
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise ValueError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}"
        ) from None
