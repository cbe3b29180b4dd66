"""The synthetic world of one seed: films (with casts and places) and users.

Built once per seed from its own random stream, so every review of that seed
talks about the same films and the same users come back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from synth import lexicon as lx

N_FILMS = 2500
N_DRIFT_FILMS = 40
N_USERS = 40_000
# Share of films that belong to a franchise (sequels, "the series").
FRANCHISE_SHARE = 0.15


@dataclass(frozen=True)
class Film:
    movie_id: str
    release_ordinal: int  # date.toordinal() of the release
    slots: dict[str, str]  # the per-film template slots (T, A, a, B, C, V, P, ...)
    drift: bool = False


@dataclass(frozen=True)
class World:
    films: tuple[Film, ...]
    drift_films: tuple[Film, ...]
    users: tuple[str, ...]


def _pick(rng: random.Random, items: tuple[str, ...]) -> str:
    return items[int(rng.random() * len(items))]


def _drift_word(rng: random.Random, parts: int) -> str:
    return "".join(_pick(rng, lx.DRIFT_SYLLABLES) for _ in range(parts)).capitalize()


def _person(rng: random.Random) -> str:
    return f"{_pick(rng, lx.FIRST_NAMES)} {_pick(rng, lx.SURNAMES)}"


def _film(rng: random.Random, movie_id: str, drift: bool) -> Film:
    from datetime import date

    if drift:
        first, surname = _drift_word(rng, 3), _drift_word(rng, 2)
        others = [_drift_word(rng, 2 + int(rng.random() * 2)) for _ in range(3)]
        place = _drift_word(rng, 3)
        part = 1 + int(rng.random() * 6)
        title = f"{lx.DRIFT_FRANCHISE} {part}: {_drift_word(rng, 3)}"
        franchise = lx.DRIFT_FRANCHISE
        year = 2017 + int(rng.random() * 2)
    else:
        first, surname = _pick(rng, lx.FIRST_NAMES), _pick(rng, lx.SURNAMES)
        others = [_pick(rng, lx.FIRST_NAMES) for _ in range(3)]
        place = _pick(rng, lx.PLACE_HEADS) + _pick(rng, lx.PLACE_TAILS)
        shape = rng.random()
        if shape < 0.35:
            title = f"The {_pick(rng, lx.TITLE_ADJ)} {_pick(rng, lx.TITLE_NOUN)}"
        elif shape < 0.55:
            title = f"{_pick(rng, lx.TITLE_NOUN)} of {place}"
        elif shape < 0.7:
            title = f"{first}'s {_pick(rng, lx.TITLE_NOUN)}"
        elif shape < 0.85:
            title = place
        else:
            title = f"{_pick(rng, lx.TITLE_ADJ)} {_pick(rng, lx.TITLE_NOUN)}"
        franchise = "series"
        if rng.random() < FRANCHISE_SHARE:
            franchise = _pick(rng, lx.FRANCHISES)
            title = f"{franchise} {2 + int(rng.random() * 4)}: {title}"
        year = 1995 + int(rng.random() * 23)
    release = date(year, 1, 1).toordinal() + int(rng.random() * 365)
    slots = {
        "T": title,
        "A": f"{first} {surname}",
        "a": first,
        "B": others[0],
        "C": others[1],
        "V": others[2],
        "P": place,
        "L": _person(rng),
        "L2": _person(rng),
        "D": _person(rng),
        "G": _pick(rng, lx.GENRES),
        "J": _pick(rng, lx.JOBS),
        "goal": _pick(rng, lx.GOALS),
        "R": _pick(rng, lx.RELATIONS),
        "F": franchise,
    }
    return Film(movie_id, release, slots, drift)


@cache
def world(seed: int) -> World:
    """The films and users of `seed` (cached: building it takes a few milliseconds)."""
    rng = random.Random(f"spoiler-stream-world-{seed}")
    ids = rng.sample(range(100_000, 9_999_999), N_FILMS + N_DRIFT_FILMS)
    films = tuple(_film(rng, f"tt{ids[i]:07d}", False) for i in range(N_FILMS))
    drift_films = tuple(
        _film(rng, f"tt{ids[N_FILMS + i]:07d}", True) for i in range(N_DRIFT_FILMS)
    )
    users = tuple(f"ur{n}" for n in rng.sample(range(100_000, 99_999_999), N_USERS))
    return World(films, drift_films, users)
