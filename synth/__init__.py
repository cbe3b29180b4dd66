"""Synthetic reviews in the IMDB Spoiler Dataset layout, with named drift scenarios.

    from synth import generate
    for record in generate(1000, seed=7, scenario="vocabulary", drift_at=500): ...
"""

from synth.generator import generate
from synth.scenarios import DESCRIPTIONS, SCENARIOS, ScenarioName, knobs_for
from synth.stats import SynthStats, summarize

__all__ = ["DESCRIPTIONS", "SCENARIOS", "ScenarioName", "SynthStats", "generate", "knobs_for",
           "summarize"]
