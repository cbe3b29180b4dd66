"""The seeded generator of synthetic reviews in the IMDB Spoiler Dataset layout.

Record `i` of seed `s` depends only on `(s, i)` and on whether the scenario is
active at `i`: each record has its own random stream. So `start_index` resumes
a stream exactly, and records before `drift_at` are byte-identical to the
undrifted stream's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import date
from typing import Any

from synth import lexicon as lx
from synth import templates as tp
from synth.catalog import Film, world
from synth.scenarios import BASELINE, Knobs, knobs_for

# Log-normal review length in words: median ~160, mean ~205, long tail to ~1000.
MEDIAN_WORDS = 135.0
SPOILER_LENGTH_BOOST = 1.25  # spoiler reviews retell the plot: a little longer
LENGTH_SIGMA = 0.72
MIN_WORDS = 8
MAX_WORDS = 1100
# Hard cap that keeps even the `length` scenario under the contract's text limit.
MAX_WORDS_DRIFTED = 3000
LAST_REVIEW_DAY = date(2018, 12, 31).toordinal()

# How a spoiler review spoils: plainly, only subtly, or not at all (the user
# ticked the box for a plot detail): the labels are self-reported and noisy.
EXPLICIT_SHARE, SUBTLE_SHARE = 0.62, 0.26
# Non-spoiler reviews that let something slip anyway.
LEAK_SUBTLE, LEAK_EXPLICIT = 0.07, 0.04
# Probability that a quality word is positive, by rating 1..10.
P_POSITIVE = (0.05, 0.08, 0.15, 0.25, 0.45, 0.55, 0.7, 0.82, 0.9, 0.94)
ORDINALS = ("second", "third", "fourth", "fifth")

_RANDOM_SLOTS: dict[str, tuple[str, ...]] = {
    "pos": lx.POSITIVE,
    "neg": lx.NEGATIVE,
    "mid": lx.MIXED,
    "dur": lx.DURATIONS,
    "friend": lx.FRIENDS,
    "scene": lx.SCENES,
    "rel": lx.RELATIONS,
    "n": ORDINALS,
    "x": lx.DRIFT_JARGON,
    "w": lx.DRIFT_FOREIGN,
}


class _Slots(dict[str, Any]):
    """Per-review slots; slots not set are drawn afresh at each use."""

    def __init__(self, base: dict[str, str], rng: random.Random, p_pos: float) -> None:
        super().__init__(base)
        self.rand = rng.random
        self.p_pos = p_pos

    def __missing__(self, key: str) -> str:
        if key in ("aq", "Aq"):
            word = self["q"]
            article = "an" if word[0] in "aeiou" else "a"
            return f"{article.capitalize() if key == 'Aq' else article} {word}"
        words: tuple[str, ...]
        if key == "q":
            r = self.rand()
            words = lx.POSITIVE if r < self.p_pos else (
                lx.MIXED if r < self.p_pos + 0.1 else lx.NEGATIVE)
        else:
            words = _RANDOM_SLOTS[key]
        return words[int(self.rand() * len(words))]


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    total, acc, out = sum(weights), 0.0, []
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


_BODY = (
    (tp.ACTING, 0.26),
    (tp.CRAFT, 0.32),
    (tp.OPINION, 0.24),
    (tp.PREMISE, 0.08),
    (tp.TEASE, 0.10),
)


def _words(template: str) -> int:
    return template.count(" ") + 1


_WORDS = {t: _words(t) for group in (
    tp.OPENERS, tp.PREMISE, tp.ACTING, tp.CRAFT, tp.OPINION, tp.CLOSERS, tp.TEASE,
    tp.WARNINGS, tp.SPOILER_EXPLICIT, tp.SPOILER_SUBTLE, tp.DRIFT) for t in group}


def _pick(rand: Any, items: tuple[str, ...]) -> str:
    return items[int(rand() * len(items))]


def _review(index: int, seed: int, knobs: Knobs, cum_ratings: list[float]) -> dict[str, Any]:
    rng = random.Random((seed << 40) + index)
    rand = rng.random
    w = world(seed)
    film: Film
    if knobs.drift_film_share and rand() < knobs.drift_film_share:
        film = w.drift_films[int(rand() * len(w.drift_films))]
    else:
        # Popularity is skewed: a few films get most of the reviews.
        film = w.films[int(len(w.films) * rand() ** 2.2)]
    user = w.users[int(len(w.users) * rand() ** 1.6)]
    day = min(film.release_ordinal + int(rng.expovariate(1 / 300)), LAST_REVIEW_DAY)
    d = date.fromordinal(max(day, film.release_ordinal))
    review_date = f"{d.day} {lx.MONTHS[d.month - 1]} {d.year}"

    r = rand()
    rating = 1
    while cum_ratings[rating - 1] < r:
        rating += 1
    is_spoiler = rand() < knobs.spoiler_rate
    slots = _Slots(film.slots, rng, P_POSITIVE[rating - 1])
    slots["r"] = str(rating)

    median = MEDIAN_WORDS * (SPOILER_LENGTH_BOOST if is_spoiler else 1.0) * knobs.length_factor
    cap = MAX_WORDS if knobs.length_factor <= 1.0 else MAX_WORDS_DRIFTED
    target = min(max(int(rng.lognormvariate(math.log(median), LENGTH_SIGMA)), MIN_WORDS), cap)

    spoilers: list[str] = []
    mode = rand()
    if is_spoiler:
        if mode < EXPLICIT_SHARE:
            spoilers = [_pick(rand, tp.SPOILER_EXPLICIT) for _ in range(1 + int(target > 250)
                                                                           + int(rand() < 0.3))]
            if rand() < 0.4:
                spoilers.append(_pick(rand, tp.SPOILER_SUBTLE))
        elif mode < EXPLICIT_SHARE + SUBTLE_SHARE:
            spoilers = [_pick(rand, tp.SPOILER_SUBTLE) for _ in range(1 + int(rand() < 0.4))]
    elif mode < LEAK_SUBTLE:
        spoilers = [_pick(rand, tp.SPOILER_SUBTLE)]
    elif mode < LEAK_SUBTLE + LEAK_EXPLICIT:
        spoilers = [_pick(rand, tp.SPOILER_EXPLICIT)]

    head: list[str] = []
    if rand() < 0.8:
        head.append(_pick(rand, tp.OPENERS))
    if is_spoiler and spoilers and rand() < 0.25:
        head.append(_pick(rand, tp.WARNINGS))
    for _ in range(int(rand() < 0.75) + int(rand() < 0.35)):
        head.append(_pick(rand, tp.PREMISE))
    tail = [_pick(rand, tp.CLOSERS)] if rand() < 0.5 else []

    used = sum(_WORDS[t] for t in head) + sum(_WORDS[t] for t in tail) + sum(
        _WORDS[t] for t in spoilers)
    body: list[str] = []
    drift_weight = 0.3 if film.drift else 0.0
    foreign = film.drift and rand() < knobs.foreign_share
    while used < target:
        x = rand()
        if x < drift_weight:
            t = _pick(rand, tp.DRIFT)
            if not foreign and "{w}" in t:
                continue
        else:
            x = rand()
            group: tuple[str, ...] = tp.OPINION
            for candidate, weight in _BODY:
                x -= weight
                if x < 0:
                    group = candidate
                    break
            t = _pick(rand, group)
            # Redraws make verbatim repeats rare, as in real reviews.
            if t in body or t in head:
                t = _pick(rand, group)
                if t in body or t in head:
                    t = _pick(rand, group)
        body.append(t)
        used += _WORDS[t]
    if foreign:
        body.insert(int(rand() * (len(body) + 1)), "{w} {w} {w}")
    # Reviewers build up before they spoil: spoilers land mostly in the second half.
    for s in spoilers:
        pos = int(len(body) * (0.3 + 0.7 * rand())) if rand() < 0.75 else int(len(body) * rand())
        body.insert(pos, s)
    text = " ".join(t.format_map(slots) for t in head + body + tail)
    if len(text) > 19_000:
        text = text[: text.rfind(" ", 0, 19_000)]

    if is_spoiler and spoilers and rand() < 0.1:
        summary = _pick(rand, tp.SPOILER_SUMMARIES).format_map(slots)
    else:
        summary = _pick(rand, tp.SUMMARIES).format_map(slots)
    summary = summary[0].upper() + summary[1:]

    if knobs.label_flip and rand() < knobs.label_flip:
        is_spoiler = not is_spoiler
    return {
        "review_date": review_date,
        "movie_id": film.movie_id,
        "user_id": user,
        "is_spoiler": is_spoiler,
        "review_text": text,
        "rating": rating,
        "review_summary": summary,
    }


def generate(
    n: int,
    seed: int,
    scenario: str = "none",
    drift_at: int | None = None,
    start_index: int = 0,
) -> Iterator[dict[str, Any]]:
    """Yield `n` synthetic reviews, records `start_index` .. `start_index + n - 1`.

    Deterministic: the same arguments give the same records, byte for byte once
    serialised. `scenario` (see `synth.SCENARIOS`) applies from record
    index `drift_at` on; `drift_at=None` means from the first record (index 0).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    drifted = knobs_for(scenario)
    switch = 0 if drift_at is None else drift_at
    cum_base = _cumulative(BASELINE.rating_weights)
    cum_drift = _cumulative(drifted.rating_weights)
    for index in range(start_index, start_index + n):
        if index >= switch:
            yield _review(index, seed, drifted, cum_drift)
        else:
            yield _review(index, seed, BASELINE, cum_base)
