"""Where records come from: a dataset file (with --start-at, --shuffle, --loop) or the
synthetic generator. Both yield `RawRecord`s with a 1-based position for messages.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from producer.reader import RawRecord, read_records
from synth import generate


@dataclass(frozen=True)
class Pass:
    """One pass over the input: `number` 0 for the first, 1.. for --loop repeats."""

    number: int
    records: Iterator[RawRecord]


def shuffled(records: Iterator[RawRecord], seed: int, buffer: int) -> Iterator[RawRecord]:
    """A bounded-memory shuffle: hold `buffer` records, emit a random one per new record.

    Not a full permutation (a record moves at most about `buffer` places earlier
    and can move arbitrarily later), but memory stays at `buffer` records.
    Deterministic for a seed and input.
    """
    rng = random.Random(seed)
    held: list[RawRecord] = []
    for record in records:
        if len(held) < buffer:
            held.append(record)
            continue
        i = rng.randrange(buffer)
        held[i], record = record, held[i]
        yield record
    rng.shuffle(held)
    yield from held


def file_passes(
    path: Path, *, start_at: int = 0, loop: bool = False, shuffle_seed: int | None = None,
    shuffle_buffer: int = 10_000,
) -> Iterator[Pass]:
    """Passes over `path`; `start_at` skips that many records (good or bad) of the first."""
    number = 0
    while True:
        records = read_records(path)
        if start_at and number == 0:
            records = _skip(records, start_at)
        if shuffle_seed is not None:
            records = shuffled(records, shuffle_seed + number, shuffle_buffer)
        yield Pass(number, records)
        if not loop:
            return
        number += 1


def _skip(records: Iterator[RawRecord], k: int) -> Iterator[RawRecord]:
    for i, record in enumerate(records):
        if i >= k:
            yield record


def synth_passes(n: int, seed: int, scenario: str, drift_at: int | None,
                 start_index: int = 0) -> Iterator[Pass]:
    """One pass of `n` generated reviews; position = record index + 1."""
    records = (
        RawRecord(start_index + i + 1, data)
        for i, data in enumerate(generate(n, seed, scenario, drift_at, start_index))
    )
    yield Pass(0, records)
